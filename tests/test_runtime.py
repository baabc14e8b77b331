"""The torch-free runtime (hearai.runtime): runs where torch cannot be imported, refuses broken files."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from hearai.errors import ModelError
from hearai.export import export_onnx
from hearai.featureconfig import FeatureConfig
from hearai.runtime import load_onnx
from tests.conftest import hearai, untrained_classifier


def test_runtime_runs_where_torch_cannot_be_imported(tmp_path, esc50_root):
    model = untrained_classifier(FeatureConfig())
    export_onnx(model, tmp_path / "m.onnx")
    clip = sorted((esc50_root / "audio").glob("*.flac"))[0]
    script = (
        "import sys, json\n"
        "sys.modules['torch'] = None  # any 'import torch' now raises ImportError\n"
        "from hearai.runtime import load_onnx\n"
        f"model = load_onnx({str(tmp_path / 'm.onnx')!r})\n"
        f"print(json.dumps(model.predict({str(clip)!r})))\n"
        "assert not any(name == 'torch' or name.startswith('torch.') for name in sys.modules if sys.modules[name])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    expected = model.predict(clip)
    assert answer["label"] == expected["label"]
    assert answer["confidence"] == pytest.approx(expected["confidence"], abs=1e-4)


def test_broken_onnx_files_are_model_errors(tmp_path):
    model = untrained_classifier(FeatureConfig())
    export_onnx(model, tmp_path / "m.onnx")
    data = (tmp_path / "m.onnx").read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="cut.onnx: not a readable ONNX model"):
        load_onnx(tmp_path / "cut.onnx")
    with pytest.raises(ModelError, match="model file not found"):
        load_onnx(tmp_path / "absent.onnx")
    import onnx

    foreign = onnx.load(str(tmp_path / "m.onnx"))
    del foreign.metadata_props[:]
    onnx.save(foreign, str(tmp_path / "foreign.onnx"))
    with pytest.raises(ModelError, match="not a hearai model"):
        load_onnx(tmp_path / "foreign.onnx")
    done = hearai("predict", str(tmp_path / "cut.onnx"), str(tmp_path / "m.onnx"))
    assert done.returncode == 2 and "Traceback" not in done.stderr and "cut.onnx" in done.stderr


def test_an_onnx_header_that_lies_about_its_frames_or_a_model_path_that_is_no_file_is_refused(tmp_path):
    """A header saying 6 frames per window over a 12-frame graph was served by predict; a FIFO, a folder or
    a device given as the model was 'model file not found'."""
    import onnx

    from hearai import DEFAULT_MODEL, load

    graph = onnx.load(str(DEFAULT_MODEL))
    header = next(p for p in graph.metadata_props if p.key == "hearai")
    told = json.loads(header.value)
    assert told["detector"]["frames_per_window"] == 12
    told["detector"]["frames_per_window"] = 6
    header.value = json.dumps(told)
    onnx.save(graph, str(tmp_path / "lying.onnx"))
    with pytest.raises(ModelError, match=r"lying.onnx: the graph's output 2 has shape \('batch', 12, 50\), but its "
                                         r"header says \('batch', 6, 50\)"):
        load_onnx(tmp_path / "lying.onnx")
    os.mkfifo(tmp_path / "fifo.onnx")
    (tmp_path / "folder.safetensors").mkdir()
    for path, kind in [(tmp_path / "fifo.onnx", "a FIFO"), (tmp_path / "folder.safetensors", "a folder")]:
        with pytest.raises(ModelError, match=f"^{path}: is {kind}, not a model file$"):
            (load_onnx if path.suffix == ".onnx" else load)(path)
    with pytest.raises(ModelError, match="^/dev/null: is a device, not a model file$"):
        load("/dev/null")
