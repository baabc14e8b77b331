"""The ``hearai`` command as a user runs it: a real subprocess, real files, real output."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors import safe_open

from hearai.featureconfig import FeatureConfig
from hearai.features import FeatureExtractor, cut_windows
from tests.conftest import BAD_INPUTS, assert_one_line_error, assert_png, bad_file, hearai, untrained_classifier


def test_explain_base_case_prints_tones_and_writes_figures(tmp_path):
    done = hearai("explain", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    found = [float(x) for x in re.findall(r"recovered ([\d.]+) Hz", done.stdout)]
    assert len(found) == 2 and abs(found[0] - 440) < 15.625 and abs(found[1] - 2500) < 15.625
    assert re.search(r"1000 mel bands: [1-9]\d* empty", done.stdout)
    assert "  150 mel bands: 0 empty" in done.stdout
    assert_png(tmp_path / "two_tones.png")
    assert_png(tmp_path / "band_counts.png")


def test_explain_draws_a_users_file(tmp_path, esc50_root):
    clip = esc50_root / "audio" / "1-100032-A-0.flac"
    done = hearai("explain", str(clip), "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "strongest spectral peaks:" in done.stdout
    assert_png(tmp_path / "1-100032-A-0.png")


@pytest.mark.parametrize("kind", sorted(BAD_INPUTS))
def test_bad_audio_gives_one_line_and_no_traceback(tmp_path, kind):
    path = bad_file(kind, tmp_path)
    done = hearai("featurize", str(path), "--out", str(tmp_path / "f.safetensors"))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    # featurize searches a folder for audio; explain (below) needs a file and says so.
    expected = "no audio files found" if kind == "directory" else BAD_INPUTS[kind].split(" (")[0]
    assert last.startswith("hearai featurize: error: ") and expected in last
    assert not (tmp_path / "f.safetensors").exists()
    explained = hearai("explain", str(path), "--out", str(tmp_path / "x"))
    assert explained.returncode == 2 and "Traceback" not in explained.stderr
    assert BAD_INPUTS[kind].split(" (")[0] in explained.stderr


def test_bad_feature_config_file_is_named(tmp_path):
    config = tmp_path / "features.json"
    config.write_text(json.dumps({"n_mels": -3}))
    done = hearai("explain", "--feature-config", str(config), "--out", str(tmp_path))
    assert done.returncode == 2 and "FeatureConfig.n_mels must be a positive integer" in done.stderr
    config.write_text("{not json")
    done = hearai("explain", "--feature-config", str(config), "--out", str(tmp_path))
    assert done.returncode == 2 and "not valid JSON" in done.stderr and "Traceback" not in done.stderr


def test_synth_then_featurize_writes_model_ready_windows(tmp_path):
    done = hearai("synth", "--out", str(tmp_path / "set"), "--per-class", "2", "--soundscapes", "1")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "set" / "manifest.csv").exists()
    assert (tmp_path / "set" / "soundscapes" / "ground_truth.csv").exists()
    config = tmp_path / "mfcc.json"
    config.write_text(json.dumps({"kind": "mfcc", "n_mfcc": 20, "n_mels": 64}))
    out = tmp_path / "features.safetensors"
    done = hearai("featurize", str(tmp_path / "set" / "audio"), "--out", str(out), "--feature-config", str(config))
    assert done.returncode == 0, done.stderr
    assert "20 files -> 60 windows of 20 x 100" in done.stdout
    with safe_open(str(out), framework="pt") as f:
        windows, owners = f.get_tensor("windows"), f.get_tensor("clip_index")
        meta = f.metadata()
    files = json.loads(meta["files"])
    feature_config = FeatureConfig.from_dict(json.loads(meta["feature_config"]))
    assert feature_config.kind == "mfcc" and len(files) == 20 and windows.shape == (60, 20, 100)
    assert owners.tolist() == [i for i in range(20) for _ in range(3)]  # 4-s clips: 3 windows each
    extractor = FeatureExtractor(feature_config)
    from hearai import audio

    expected = cut_windows(extractor.clip(audio.load(files[7], sample_rate=16_000)), feature_config)
    torch.testing.assert_close(windows[owners == 7], expected)


@pytest.mark.parametrize(
    "verb", ["", "explain", "synth", "featurize", "prepare", "cv", "train", "evaluate", "predict", "demo"]
)
def test_help_answers(verb):
    done = hearai(*([verb] if verb else []), "--help")
    assert done.returncode == 0 and "usage: hearai" in done.stdout


def test_unwritable_output_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    done = hearai("synth", "--out", str(blocker / "set"), "--per-class", "1")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("hearai synth: error: ") and str(blocker) in last and "Not a directory" in last


def test_featurize_without_audio_files_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    done = hearai("featurize", str(tmp_path / "empty"), "--out", str(tmp_path / "f.safetensors"))
    assert done.returncode == 2 and "no audio files found" in done.stderr


def _file_size_limit(limit: int):
    def apply() -> None:  # in the child: writes beyond ``limit`` bytes fail with EFBIG, as on a full disk
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_training_onto_a_full_disk_or_into_divergence_writes_nothing_and_says_why(small_set, tmp_path):
    """A full disk gave a RuntimeError traceback from torch.save; --lr 1e30 saved a useless model with exit 0."""
    out = tmp_path / "m.safetensors"
    out.write_bytes(b"the user's earlier model")
    common = ["--dataset", "csv", "--root", str(small_set), "--folds", "1,2", "--epochs", "1", "--out", str(out),
              "--cache", str(tmp_path / "c"), "--quiet"]
    full = subprocess.run([sys.executable, "-m", "hearai.cli", "train", *common], capture_output=True, text=True,
                          timeout=300, preexec_fn=_file_size_limit(200_000))
    assert_one_line_error(full, "train", "m.safetensors.checkpoint.pt: could not be written (the disk may be full",
                          "any earlier file there is unchanged")
    assert out.read_bytes() == b"the user's earlier model"
    diverged = hearai("train", *common, "--lr", "1e30")
    assert_one_line_error(diverged, "train", "training diverged in epoch 1", "no model is written")
    assert out.read_bytes() == b"the user's earlier model"


@pytest.mark.slow
def test_train_evaluate_predict_cli(small_set, tmp_path):
    model = tmp_path / "m.safetensors"
    done = hearai("train", "--dataset", "csv", "--root", str(small_set), "--folds", "1,2,3", "--epochs", "2",
                  "--out", str(model), "--cache", str(tmp_path / "c"), "--quiet")
    assert done.returncode == 0, done.stderr
    assert model.exists() and model.with_suffix(".curves.png").exists()
    done = hearai("evaluate", str(model), "--dataset", "csv", "--root", str(small_set), "--folds", "4",
                  "--out", str(tmp_path / "eval"), "--cache", str(tmp_path / "c"), "--quiet")
    assert done.returncode == 0, done.stderr
    assert "on 20 clips" in done.stdout, done.stdout
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["n_test"] == 20 and len(metrics["confusion"]) == 10
    files = sorted(small_set.parent.glob("audio/siren/*.wav"))[:2]
    done = hearai("predict", str(model), *map(str, files))
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 2 and lines[0]["file"] == str(files[0]) and lines[0]["label"] in metrics["per_class"]
    done = hearai("predict", str(tmp_path / "missing.safetensors"), str(files[0]))
    assert done.returncode == 2 and "model file not found" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_cli_export_then_predict_with_the_onnx_file(tmp_path, esc50_root):
    model = untrained_classifier(FeatureConfig())
    model.save(tmp_path / "m.safetensors")
    done = hearai("export", str(tmp_path / "m.safetensors"), "--onnx", str(tmp_path / "m.onnx"))
    assert done.returncode == 0, done.stderr
    assert "32704-sample windows at 16000 Hz -> 5 class probabilities" in done.stdout
    clip = sorted((esc50_root / "audio").glob("*.flac"))[0]
    torch_answer = json.loads(hearai("predict", str(tmp_path / "m.safetensors"), str(clip)).stdout)
    onnx_answer = json.loads(hearai("predict", str(tmp_path / "m.onnx"), str(clip)).stdout)
    assert onnx_answer["label"] == torch_answer["label"]
    assert onnx_answer["confidence"] == pytest.approx(torch_answer["confidence"], abs=1e-4)


def test_feature_config_is_a_json_object_or_a_file_and_explain_draws_mfccs(tmp_path):
    inline = hearai("explain", "--out", str(tmp_path / "inline"), "--feature-config", '{"kind": "mfcc", "n_mfcc": 20}')
    assert inline.returncode == 0, inline.stderr
    assert "MFCC: 20 coefficients per frame from 150 mel bands" in inline.stdout
    assert_png(tmp_path / "inline" / "two_tones.png")
    (tmp_path / "mfcc.json").write_text('{"kind": "mfcc", "n_mfcc": 13}')
    from_file = hearai("explain", "--out", str(tmp_path / "file"), "--feature-config", str(tmp_path / "mfcc.json"))
    assert from_file.returncode == 0, from_file.stderr
    assert "MFCC: 13 coefficients" in from_file.stdout
    plain = hearai("explain", "--out", str(tmp_path / "plain"))
    assert "MFCC" not in plain.stdout


def test_help_tells_the_default_training_recipe_truthfully():
    done = hearai("train", "--help")
    text = " ".join(done.stdout.split())
    assert "By default every clip trains a classifier and the last epoch is kept" in text
    assert "--validation-fraction VALIDATION_FRACTION" in text
    assert "(default: classifiers: 0.0; detectors: 0.15)" in text
    assert "holding out a validation split" not in text


@pytest.mark.parametrize("port", ["99999", "-1"])
def test_serve_on_an_impossible_port_is_one_line(tiny_model, port):
    done = hearai("serve", str(tiny_model), "--port", port)
    assert_one_line_error(done, "serve", f"--port {port}", "between 0 and 65535")
    assert "serving" not in done.stderr


def test_serve_on_a_port_in_use_says_so_before_announcing_anything(tiny_model):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = hearai("serve", str(tiny_model), "--port", str(port))
    assert_one_line_error(done, "serve", f"127.0.0.1:{port} is already in use")
    assert "serving" not in done.stderr


def test_detect_in_a_folder_without_audio_is_a_clear_error(tiny_model, tmp_path):
    (tmp_path / "notes.txt").write_text("no audio here")
    done = hearai("detect", str(tiny_model), str(tmp_path))
    assert_one_line_error(done, "detect", f"no audio files found in {tmp_path}")
    assert done.stdout == ""


def test_predict_prints_rounded_confidences(tiny_model, esc50_root):
    clip = sorted((esc50_root / "audio").glob("*.flac"))[0]
    done = hearai("predict", str(tiny_model), str(clip))
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    numbers = [answer["confidence"], *answer["probabilities"].values()]
    assert all(round(p, 4) == p for p in numbers) and len(answer["probabilities"]) == 10
    assert not re.search(r"\d\.\d{5,}", done.stdout), done.stdout
    assert sum(answer["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)


def test_a_partial_urbansound8k_download_works_for_its_folds(tmp_path, us8k_root):
    """Metadata lists every fold, the audio holds folds 3 and 5 only: choosing those folds works."""
    shutil.copytree(us8k_root / "audio" / "fold3", tmp_path / "audio" / "fold3")
    shutil.copytree(us8k_root / "audio" / "fold5", tmp_path / "audio" / "fold5")
    (tmp_path / "metadata").mkdir()
    shutil.copy(us8k_root / "metadata" / "UrbanSound8K.csv", tmp_path / "metadata" / "UrbanSound8K.csv")
    done = hearai("prepare", "--dataset", "urbansound8k", "--root", str(tmp_path), "--folds", "3,5",
                  "--out", str(tmp_path / "m.csv"))
    assert done.returncode == 0, done.stderr
    assert "7 clips" in done.stdout and "'3': 2, '5': 5" in done.stdout
    missing = hearai("prepare", "--dataset", "urbansound8k", "--root", str(tmp_path), "--folds", "3,4",
                     "--out", str(tmp_path / "m2.csv"))
    assert_one_line_error(missing, "prepare", "2 missing file(s)", "fold4")


def test_detect_quotes_file_names_on_stdout(tiny_model, tmp_path):
    """A file name with a comma and a newline forged rows in the unquoted CSV on stdout."""
    wave = (0.01 * np.random.default_rng(0).standard_normal(6 * 16_000)).astype(np.float32)
    wave[2 * 16_000 : 4 * 16_000] += 0.3 * np.sin(2 * np.pi * 900 * np.arange(2 * 16_000) / 16_000)
    name = tmp_path / "door,bell\nsiren,1,2,3.wav"
    sf.write(name, wave, 16_000)
    done = hearai("detect", str(tiny_model), str(name), "--threshold", "0.05", "--release", "0.01")
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(io.StringIO(done.stdout)))
    assert rows[0] == ["file", "label", "onset", "offset", "confidence"] and len(rows) > 1
    assert all(row[0] == str(name) and len(row) == 5 for row in rows[1:])


def test_detect_in_a_folder_shows_its_progress_in_seconds_of_audio_and_an_output_that_is_no_file_is_refused(
        tiny_model, tmp_path):
    """detect DIR was silent until the end; --out onto a FIFO, a device or a link replaced them with a file."""
    for i, seconds in enumerate((3.0, 4.5)):
        sf.write(tmp_path / f"{i}.wav", np.zeros(int(seconds * 16_000), np.float32), 16_000)
    done = hearai("detect", str(tiny_model), str(tmp_path))
    shown = done.stderr.replace("\r", "\n").splitlines()
    assert done.returncode == 0 and any(line.startswith("detecting: 100%") and "8/8 s of audio" in line
                                        for line in shown), done.stderr
    assert "s of audio" not in hearai("detect", str(tiny_model), str(tmp_path), "--quiet").stderr
    os.mkfifo(tmp_path / "fifo.csv")
    os.symlink("/dev/null", tmp_path / "null.csv")
    (tmp_path / "real.csv").write_text("")
    os.symlink("real.csv", tmp_path / "link.csv")
    for name, said in [("fifo.csv", "is a FIFO"), ("null.csv", "is a device")]:
        refused = hearai("detect", str(tiny_model), str(tmp_path / "0.wav"), "--out", str(tmp_path / name), "--quiet")
        assert_one_line_error(refused, "detect", f"{tmp_path / name}: {said}, not a file")
    linked = hearai("detect", str(tiny_model), str(tmp_path / "0.wav"), "--out", str(tmp_path / "link.csv"), "--quiet")
    assert linked.returncode == 0 and os.path.islink(tmp_path / "link.csv"), linked.stderr
    assert (tmp_path / "real.csv").read_text().startswith("file,label,onset,offset,confidence")


def test_audio_far_beyond_full_scale_is_an_error_not_nan(tiny_model, tmp_path):
    """A float WAV with amplitude 1e30 printed NaN, which is not even JSON."""
    wave = np.zeros(16_000, np.float32)
    wave[100] = 1e30
    sf.write(tmp_path / "loud.wav", wave, 16_000, subtype="FLOAT")
    done = hearai("predict", str(tiny_model), str(tmp_path / "loud.wav"))
    assert_one_line_error(done, "predict", "loud.wav", "beyond ±10000")
    assert "NaN" not in done.stdout


def test_exporting_an_onnx_file_says_it_is_one_already(tmp_path):
    from hearai import DEFAULT_MODEL

    done = hearai("export", str(DEFAULT_MODEL), "--onnx", str(tmp_path / "again.onnx"))
    assert_one_line_error(done, "export", "this is an ONNX model already", "export the .safetensors file")
    assert not (tmp_path / "again.onnx").exists()


def test_only_takes_sounds_in_any_case_and_suggests_the_closest(tmp_path):
    from hearai import DEFAULT_MODEL

    sf.write(tmp_path / "quiet.wav", np.zeros(16_000, dtype=np.float32), 16_000)
    done = hearai("detect", str(DEFAULT_MODEL), str(tmp_path / "quiet.wav"), "--only", "Siren,Car Horn,crying-baby")
    assert done.returncode == 0, done.stderr
    wrong = hearai("detect", str(DEFAULT_MODEL), str(tmp_path / "quiet.wav"), "--only", "Sirne")
    assert_one_line_error(wrong, "detect", "the model has no sound 'Sirne'; did you mean 'siren'?")
    assert len(wrong.stderr.strip()) < 120  # one suggestion, not the 50 labels


def test_usage_lines_name_the_model_once_and_every_verb_describes_itself():
    for verb in ("predict", "detect", "listen", "teach"):
        usage = hearai(verb, "--help").stdout.split("\n\n")[0]
        assert "[[MODEL]" not in usage and usage.count("[MODEL]") == 1, usage
    from hearai.cli import build_parser

    verbs = next(a for a in build_parser()._actions if a.dest == "verb").choices
    for name, verb in verbs.items():  # the positionals the help explains are the ones the usage line names
        usage = verb.format_usage()
        for action in verb._actions:
            if not action.option_strings and action.metavar:
                assert re.search(rf"(?<![\w-]){re.escape(action.metavar)}(?![\w-])", usage), (name, usage)
    assert "'ear'" in " ".join(verbs["export"].format_help().split())
    demo = hearai("demo", "--help").stdout
    assert "feature cache stays in hearai's cache folder" in " ".join(demo.split())
