"""Transfer learning from the pretrained ear: a frozen head on cached embeddings, and fine-tuning every weight."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hearai.artifact import load
from tests.conftest import DATA, hearai

CLASSES = {"0": "dog", "10": "rain", "20": "crying_baby", "38": "clock_tick"}


@pytest.fixture(scope="module")
def four_sounds(tmp_path_factory, esc50_rows) -> Path:
    """ESC-50's dog, rain, crying baby and clock tick clips of folds 1-3, as a CSV manifest (96 clips)."""
    manifest = tmp_path_factory.mktemp("four") / "manifest.csv"
    rows = [(str(DATA / "esc50" / "audio" / r["filename"]), CLASSES[r["target"]], r["fold"])
            for r in esc50_rows if r["target"] in CLASSES and r["fold"] in ("1", "2", "3")]
    with open(manifest, "w", newline="") as f:
        csv.writer(f).writerows([("path", "label", "fold"), *rows])
    return manifest


@pytest.fixture(scope="module")
def environment(pretrained_cache, mn04_folder, tmp_path_factory):
    """A private cache (features, embeddings) and the mirror, for this module's runs of the CLI."""
    cache = tmp_path_factory.mktemp("transfer-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HEARAI_CACHE", str(cache))
        patch.setenv("HEARAI_MIRROR", str(mn04_folder.parent))
        yield cache


@pytest.fixture(scope="module")
def frozen(four_sounds, environment, tmp_path_factory) -> Path:
    """A linear head on the frozen pretrained ear, trained by the CLI on folds 1-2 of the four sounds."""
    out = tmp_path_factory.mktemp("frozen") / "four.safetensors"
    done = hearai("train", "--dataset", "csv", "--root", str(four_sounds), "--folds", "1,2", "--backbone",
                  "efficientat-mn04", "--finetune", "head", "--out", str(out), "--quiet", "--workers", "0")
    assert done.returncode == 0, done.stderr
    return out


def test_a_frozen_head_learns_four_sounds_and_its_file_says_where_it_came_from(four_sounds, environment, frozen):
    model = load(frozen)
    assert model.model_name == "efficientat" and model.task == "classifier" and len(model.labels) == 4
    assert model.feature_config.bandwidth_hz == 8000.0  # ESC-50 here is 16 kHz: nothing above 8 kHz was heard
    assert model.provenance["pretrained"]["sha256"].startswith("899a8c62")
    assert "Florian Schmid" in model.provenance["pretrained"]["licence"]
    cached = list((environment / "features").glob("*-embeddings/*.safetensors"))
    assert len(cached) == 64  # the training clips' embeddings, one file each
    test_clips = [r for r in csv.DictReader(open(four_sounds)) if r["fold"] == "3"][::4]
    right = sum(model.predict(r["path"])["label"] == r["label"] for r in test_clips)
    assert right >= 7, right  # of 8 held-out clips, two of each sound


def test_the_head_on_cached_embeddings_equals_the_whole_network_on_the_clip(four_sounds, environment, frozen):
    from hearai.data.cache import FeatureCache
    from hearai.models.inference import clip_probabilities
    from hearai.transfer import embed_clips, mobilenet

    model = load(frozen)
    paths = [Path(r["path"]) for r in csv.DictReader(open(four_sounds)) if r["fold"] == "3"][:3]
    features = FeatureCache().features(paths, model.feature_config, progress=False)
    net = mobilenet(model.model)
    by_head = [torch.softmax(net.classifier[2:](e), dim=1).mean(dim=0)
               for e in embed_clips(net, features, model.feature_config)]
    whole = clip_probabilities(model.model, features, model.feature_config)
    torch.testing.assert_close(torch.stack(by_head), whole, atol=1e-5, rtol=0)
    by_file = np.stack([model.predict_proba(p) for p in paths])
    np.testing.assert_allclose(by_file, whole.numpy(), atol=2e-3)  # crops: the first frames' padding differs


def test_fine_tuning_starts_from_the_pretrained_weights_and_changes_them(four_sounds, environment, tmp_path, mn04):
    out = tmp_path / "tuned.safetensors"
    done = hearai("train", "--dataset", "csv", "--root", str(four_sounds), "--folds", "1,2", "--backbone",
                  "efficientat-mn04", "--finetune", "all", "--epochs", "1", "--batch-size", "8", "--out", str(out),
                  "--quiet", "--workers", "0")
    assert done.returncode == 0, done.stderr
    tuned = load(out)
    config = tuned.provenance["train_config"]
    assert config["backbone"] == "efficientat-mn04" and config["finetune"] == "all"
    before = mn04.model.net.state_dict()
    after = tuned.model.net.state_dict()
    first = "features.0.0.weight"
    moved = float((after[first] - before[first]).abs().max())
    assert 0 < moved < 0.05 * float(before[first].abs().max())  # one epoch at a tenth of the rate: a nudge
    # AudioSet's hidden head layer is kept; the output layer is new, for the four sounds.
    assert after["classifier.5.weight"].shape == (4, 512)
    assert json.loads(json.dumps(tuned.describe()))["labels"] == sorted(CLASSES.values())
