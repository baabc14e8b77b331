"""hearai: sound event classification and detection, from any audio file to alerts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hearai.errors import AudioError, ConfigError, DatasetError, HearaiError, ModelError
from hearai.fsutil import require_file

if TYPE_CHECKING:
    from hearai.interface import SoundModel

__version__ = "0.1.0"
__all__ = ["AudioError", "ConfigError", "DatasetError", "HearaiError", "ModelError", "DEFAULT_MODEL", "__version__",
           "default_model", "is_onnx", "load", "load_file", "model_file", "open_model"]

_ONNX_FIRST_BYTE = b"\x08"  # protobuf field 1 (ir_version), varint
# The shipped detector (its model card: docs/pretrained.md): ONNX, so that it runs without torch; its
# .safetensors twin beside it is what 'make default-model' trains and exports from.
DEFAULT_MODEL = Path(__file__).parent / "default_model" / "esc50-sed.onnx"


def model_file(path: str | Path, *, data_dir: str | Path | None = None) -> Path:
    """The file a model argument names: a path, a pretrained network's name (``efficientat-mn04``) or ``ear``.

    A name gives its model file in the cache, made from the weights in a mirror folder
    (``HEARAI_MIRROR``) or the cache when needed; it never downloads: 'hearai pull NAME' does.
    ``ear``: the alert sounds of the table in ``data_dir`` (default ``hearai.ear.table.default_data_dir()``),
    else the shipped table.
    """
    from hearai.weights import EAR, is_pretrained_name, unknown_model

    said = unknown_model(path)
    if said:
        raise ModelError(said)
    if is_pretrained_name(path) and not Path(path).exists():
        if str(path) == EAR:
            from hearai.ear.building import ear_model_path
            from hearai.ear.table import default_data_dir

            return ear_model_path(default_data_dir() if data_dir is None else data_dir)
        from hearai.pretrained import pretrained_model_path

        return pretrained_model_path(str(path))
    return Path(path)


def default_model(*, data_dir: str | Path | None = None) -> tuple[Path, str]:
    """The model a command uses when given none, and a line for the user when it is not the best one.

    The ear when its network's weights are here (pulled, or in a mirror folder); otherwise the
    shipped ESC-50 detector (``DEFAULT_MODEL``), which knows no alarm or doorbell.
    """
    from hearai.weights import EAR, EAR_BACKBONE, available

    if available(EAR_BACKBONE):
        return model_file(EAR, data_dir=data_dir), ""
    return DEFAULT_MODEL, (f"listening with the ESC-50 detector (no smoke alarm, doorbell or phone): "
                           f"'hearai pull {EAR_BACKBONE}' gets the pretrained ear")


def is_onnx(path: str | Path) -> bool:
    """Whether the file at ``path`` is an ONNX model, by its first bytes (``load``'s rule); False if unreadable."""
    try:
        with open(path, "rb") as f:
            return _onnx_head(f.read(9))
    except OSError:
        return False


def _onnx_head(head: bytes) -> bool:
    # A safetensors file starts with its header's length (8 bytes, little-endian), then the header's
    # JSON "{": that length's low byte is 0x08 in one file of 256, so the "{" decides.
    return head[:1] == _ONNX_FIRST_BYTE and head[8:9] != b"{"


def load(path: str | Path | None = None, *, data_dir: str | Path | None = None) -> SoundModel:
    """Open a model as every command opens it (``hearai predict``, ``detect``, ``listen``, ``serve``).

    ``path``: a model file of either kind (``load_file``), a pretrained network's name
    (``efficientat-mn04``), ``ear``, or ``None`` for the default model (``default_model``: the
    ear when its network is here, else the shipped ESC-50 detector, with a warning that says so).
    An ear comes with the corrections the person made of it (``hearai teach --not/--yes``, the
    page), kept in ``data_dir`` (default ``hearai.ear.table.default_data_dir()``).
    """
    import warnings

    model, notes = open_model(path, data_dir=data_dir)
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return model


def open_model(path: str | Path | None = None, *, data_dir: str | Path | None = None
               ) -> tuple[SoundModel, list[str]]:
    """``load``'s model, and what to tell the person about it (the commands print it)."""
    from hearai.ear.kept import Corrector
    from hearai.ear.table import default_data_dir

    notes = []
    if path is None:
        path, note = default_model(data_dir=data_dir)
        notes += [note] if note else []
    model = load_file(model_file(path, data_dir=data_dir))
    if "alert_sounds" not in model.provenance:
        return model, notes
    corrector = Corrector(Path(data_dir) if data_dir is not None else default_data_dir())
    said = corrector.restore(model)
    return corrector.apply(model), notes + ([said] if said else [])


def load_file(path: str | Path) -> SoundModel:
    """Open a model file of either kind as a ``SoundModel``, as it is: ``.safetensors`` (torch) or ``.onnx``
    (no torch).

    The kind is read from the file's first bytes, not its name: an ONNX model (a protobuf) starts
    with its IR-version field, byte 0x08 (and has no safetensors JSON header at byte 8); anything
    else goes to the safetensors reader, whose error names the file when it is neither.
    """
    target = Path(path)
    if target == DEFAULT_MODEL and not target.is_file():
        raise ModelError(f"{DEFAULT_MODEL}: the shipped model is missing from this installation; rebuild it with "
                         "'make default-model' or give a model file")
    require_file(target, "model file", ModelError)
    try:
        with open(target, "rb") as f:
            head = f.read(9)
    except OSError as exc:
        raise ModelError(f"{target}: cannot be read: {exc.strerror or exc}") from exc
    if _onnx_head(head):
        from hearai.runtime import load_onnx

        return load_onnx(target)
    from hearai.artifact import load as load_safetensors

    return load_safetensors(target)
