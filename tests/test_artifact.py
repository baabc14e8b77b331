"""The torch model file (hearai.artifact): broken, foreign and mismatched files are ModelErrors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hearai import load
from hearai.errors import ModelError


def test_broken_model_files_are_model_errors(tmp_path, small_set):
    with pytest.raises(ModelError, match="model file not found"):
        load(tmp_path / "none.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(ModelError, match="not a readable model file"):
        load(junk)
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(ModelError, match="not a hearai model"):
        load(tmp_path / "foreign.safetensors")


HEADER_FUZZ_CASES = 60


def _mutated(value, rng: np.random.Generator):
    """A hostile replacement for one header value: huge, negative, the wrong type, or gone."""
    choices = [10**9, -1, 2**28, 1e300, "x", None, [], {}, [32, 200000, 200000], True, float("nan")]
    return choices[int(rng.integers(0, len(choices)))]


def test_fuzzed_model_headers_are_model_errors_or_bounded_models(tmp_path, tiny_model):
    """Mutated model headers: a ModelError naming the file, or a model within the size bounds."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(tiny_model), framework="pt") as f:
        header, state = json.loads(f.metadata()["hearai"]), {k: f.get_tensor(k) for k in f.keys()}
    places = [("feature_config", k) for k in header["feature_config"]] + [("model", "name"), ("model", "options"),
                                                                          ("labels",), ("format",)]
    rng = np.random.default_rng(12)
    outcomes = {"refused": 0, "loaded": 0}
    for k in range(HEADER_FUZZ_CASES):
        mutated = json.loads(json.dumps(header))
        place = places[int(rng.integers(0, len(places)))]
        target = mutated
        for key in place[:-1]:
            target = target[key]
        if place == ("model", "options"):
            target["options"] = {["widths", "blocks", "dropout", "depth"][k % 4]: _mutated(None, rng)}
        else:
            target[place[-1]] = _mutated(target[place[-1]], rng)
        path = tmp_path / f"fuzz-{k}.safetensors"
        save_file(state, str(path), metadata={"hearai": json.dumps(mutated)})
        try:
            model = load(path)
        except ModelError as exc:
            assert str(exc).startswith(str(path)), exc
            outcomes["refused"] += 1
        else:
            outcomes["loaded"] += 1
            assert sum(p.numel() for p in model.model.parameters()) < 200_000_000
    assert outcomes["refused"] > HEADER_FUZZ_CASES // 2, outcomes


def test_a_safetensors_file_whose_header_length_starts_like_onnx_loads(tmp_path):
    """A safetensors file starts with its header's length: its low byte is 0x08, an ONNX file's first
    byte, in one file of 256 (a clean-clone test run met one and read it as ONNX)."""
    from hearai.artifact import Classifier
    from hearai.featureconfig import FeatureConfig
    from tests.conftest import untrained_classifier

    plain = untrained_classifier(FeatureConfig(n_mels=40))
    path = tmp_path / "model.safetensors"
    for pad in range(300):
        note = "x" * pad
        Classifier(model=plain.model, feature_config=plain.feature_config, labels=plain.labels,
                   model_name=plain.model_name, provenance={"note": note}).save(path)
        if path.read_bytes()[:1] == b"\x08":
            break
    assert path.read_bytes()[:1] == b"\x08"
    loaded = load(path)
    assert loaded.task == "classifier" and loaded.provenance["note"] == note


def test_a_reference_tensor_of_no_dimensions_is_a_model_error(tmp_path):
    """A shipped-model file whose reference.levels was 0-d: 'TypeError: len() of a 0-d tensor'."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    import hearai

    shipped = Path(hearai.__file__).parent / "default_model" / "esc50-sed.safetensors"
    with safe_open(str(shipped), framework="pt") as f:
        tensors, metadata = {k: f.get_tensor(k) for k in f.keys()}, f.metadata()
    tensors["reference.levels"] = torch.tensor(3, dtype=torch.uint8)
    save_file(tensors, str(tmp_path / "flat.safetensors"), metadata=metadata)
    with pytest.raises(ModelError, match="flat.safetensors: the reference windows do not fit the model"):
        load(tmp_path / "flat.safetensors")


def test_nan_weights_or_wrongly_shaped_ones_are_one_short_line_naming_the_file(tmp_path):
    """NaN weights loaded and failed later naming no file; every mismatched weight made a 14.7 KB line."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    import hearai

    shipped = Path(hearai.__file__).parent / "default_model" / "esc50-sed.safetensors"
    with safe_open(str(shipped), framework="pt") as f:
        tensors, metadata = {k: f.get_tensor(k) for k in f.keys()}, f.metadata()
    weight = next(k for k, v in tensors.items() if v.is_floating_point() and not k.startswith("reference."))
    save_file({**tensors, weight: torch.full_like(tensors[weight], float("nan"))}, str(tmp_path / "nan.safetensors"),
              metadata=metadata)
    with pytest.raises(ModelError, match=f"^{tmp_path / 'nan.safetensors'}: weight '{weight}' holds NaN"):
        load(tmp_path / "nan.safetensors")
    reshaped = {k: (v.flatten()[:1].clone() if v.is_floating_point() and not k.startswith("reference.") else v)
                for k, v in tensors.items()}
    save_file(reshaped, str(tmp_path / "shapes.safetensors"), metadata=metadata)
    with pytest.raises(ModelError, match=r"shapes.safetensors: weights do not fit model 'sed': size mismatch .* more\)$"
                       ) as refused:
        load(tmp_path / "shapes.safetensors")
    assert len(str(refused.value)) < 500 and "\n" not in str(refused.value)
