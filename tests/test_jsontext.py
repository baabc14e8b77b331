"""JSON from outside (hearai.jsontext) and every reader that takes it: configs, model headers, run
records, ONNX metadata, kept taught sounds. A document 100,000 levels deep crashed each of them
with a RecursionError traceback."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
import torch
from safetensors.torch import save_file

import hearai as hearai_package
from hearai import load
from hearai.crossval import claim_run_folder
from hearai.errors import ConfigError, ModelError
from hearai.jsontext import parse_json, read_json_file
from hearai.serve.sounds import TAUGHT_FILE, SoundTeacher
from tests.conftest import assert_one_line_error, hearai

SHIPPED = Path(hearai_package.__file__).parent / "default_model" / "esc50-sed.onnx"
DEEP = '{"n_mels": ' + "[" * 100_000 + "]" * 100_000 + "}"


def test_a_document_within_the_bounds_is_read_as_it_is():
    assert parse_json('{"a": [1, 2.5, {"b": null}], "c": "x"}', source="s") == {"a": [1, 2.5, {"b": None}], "c": "x"}
    assert parse_json(b'[[[[1]]]]', source="s", max_depth=5) == [[[[1]]]]


@pytest.mark.parametrize("text, limits, message", [
    (DEEP, {}, "s: JSON nested deeper than 64 levels"),
    ("[" * 65 + "]" * 65, {}, "s: JSON nested deeper than 64 levels"),
    ("[[[1]]]", {"max_depth": 2}, "s: JSON nested deeper than 2 levels"),
    ('{"a": NaN}', {}, "s: not valid JSON: NaN is not a JSON number"),
    ("[Infinity]", {}, "s: not valid JSON: Infinity is not a JSON number"),
    ("[" + ",".join(["1"] * 11) + "]", {"max_items": 10}, "s: JSON of more than 10 elements"),
    ('"' + "x" * 100 + '"', {"max_chars": 50}, "s: more than 50 characters of JSON"),
    ("{not json", {}, "s: not valid JSON: Expecting property name"),
])
def test_what_breaks_a_bound_is_a_one_line_error_naming_the_source(text, limits, message):
    with pytest.raises(ConfigError) as caught:
        parse_json(text, source="s", **limits)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_a_file_is_bounded_before_it_is_read(tmp_path):
    big = tmp_path / "big.json"
    big.write_text("[" + "0," * 600 + "0]")
    with pytest.raises(ModelError, match=f"^{big}: more than 1,000 characters of JSON$"):
        read_json_file(big, error=ModelError, max_chars=1000)
    with pytest.raises(ConfigError, match="file not found"):
        read_json_file(tmp_path / "absent.json")


def test_a_deep_detect_config_is_a_one_line_error(tmp_path, tiny_model, esc50_root):
    config = tmp_path / "d.json"
    config.write_text(DEEP)
    clip = sorted((esc50_root / "audio").glob("*.flac"))[0]
    done = hearai("detect", str(tiny_model), str(clip), "--detect-config", str(config))
    assert_one_line_error(done, "detect", f"--detect-config {config}: JSON nested deeper than 64 levels")


def test_a_deep_model_header_or_onnx_metadata_is_a_model_error(tmp_path):
    model = tmp_path / "deep.safetensors"
    save_file({"x": torch.zeros(1)}, str(model), metadata={"hearai": DEEP})
    with pytest.raises(ModelError, match="deep.safetensors: JSON nested deeper"):
        load(model)
    graph = onnx.load(str(SHIPPED))
    next(p for p in graph.metadata_props if p.key == "hearai").value = DEEP
    onnx.save(graph, str(tmp_path / "deep.onnx"))
    with pytest.raises(ModelError, match="deep.onnx: JSON nested deeper"):
        load(tmp_path / "deep.onnx")


def test_a_deep_run_record_is_refused_with_what_to_do(tmp_path):
    (tmp_path / "run.json").write_text(DEEP)
    with pytest.raises(ConfigError, match="unreadable run record: .*run.json: JSON nested deeper.*use a new --out"):
        claim_run_folder(tmp_path, {"folds": [1, 2]}, resume=True)


def test_a_deep_kept_taught_file_is_set_aside_and_the_server_still_starts(tmp_path):
    save_file({"x": torch.zeros(1)}, str(tmp_path / TAUGHT_FILE), metadata={"hearai": DEEP})
    shipped = SHIPPED.with_suffix(".safetensors")
    teacher = SoundTeacher(load(shipped), model_path=shipped, data_dir=tmp_path)
    said = teacher.restore()
    assert said.startswith(f"{tmp_path / TAUGHT_FILE}: ") and "nested deeper" in said and "left as it is" in said
    assert teacher.model.labels == load(shipped).labels


def test_settings_frames_are_bounded_too(tiny_model):
    from fastapi.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    from hearai.serve import create_app

    client = TestClient(create_app(load(tiny_model)))
    deep = '{"sensitivity": ' + "[" * 30_000 + "]" * 30_000 + "}"
    with client.websocket_connect("/v1/stream") as socket:
        assert socket.receive_json()["type"] == "ready"
        socket.send_text(deep)
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_text()
    assert closed.value.code == 1008 and "settings: JSON nested deeper than 3 levels" in closed.value.reason
