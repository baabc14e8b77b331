"""The torch model file (hearai.artifact): broken, foreign and mismatched files are ModelErrors."""

from __future__ import annotations

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
