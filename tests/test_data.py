"""Dataset adapters: official layouts, user folders and CSVs, and the checks that keep CV honest."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from hearai.data import Clip, assign_folds, prepare, prepare_esc50, prepare_urbansound8k
from hearai.errors import DatasetError


def test_urbansound8k_sample_in_its_official_layout(us8k_root):
    data = prepare("urbansound8k", us8k_root)
    assert len(data.clips) == 14 and data.folds == [3, 4, 5, 6, 7, 8, 9]
    assert data.labels[0] == "air_conditioner" and data.labels[8] == "siren"  # ordered by classID
    siren = next(c for c in data.clips if c.label == "siren")
    assert siren.path == us8k_root / "audio" / "fold7" / "102853-8-0-0.wav" and siren.source == "102853"
    assert data.label_index("siren") == int(siren.metadata["classID"])


def test_esc50_and_esc10_official_folds(esc50_root):
    esc50 = prepare("esc50", esc50_root)
    assert len(esc50.clips) == 2000 and len(esc50.labels) == 50
    assert esc50.labels[:3] == ("dog", "rooster", "pig")  # ordered by target
    assert Counter(c.fold for c in esc50.clips) == {k: 400 for k in range(1, 6)}
    # The official metadata puts four source recordings in two folds each (under two classes).
    assert esc50.warnings == (
        "4 source recording(s) in more than one fold: 131943: folds [2, 3], 134049: folds [2, 3], "
        "209698: folds [4, 5], 234879: folds [4, 5]",
    )
    esc10 = prepare("esc10", esc50_root)
    assert len(esc10.clips) == 400 and len(esc10.labels) == 10
    assert Counter(c.label for c in esc10.clips) == {label: 40 for label in esc10.labels}
    assert esc10.select([2, 3]).summary()["folds"] == {"2": 80, "3": 80}


def test_esc50_official_release_layout(tmp_path, esc50_root):
    (tmp_path / "meta").mkdir()
    (tmp_path / "audio").mkdir()
    lines = (esc50_root / "esc50.csv").read_text().splitlines()
    rows = [lines[0]] + [line.replace(".flac", ".wav") for line in lines[1:4]]
    (tmp_path / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    for line in rows[1:]:
        name = line.split(",")[0]
        shutil.copy(esc50_root / "audio" / name.replace(".wav", ".flac"), tmp_path / "audio" / name)
    data = prepare_esc50(tmp_path)
    assert [c.path.suffix for c in data.clips] == [".wav"] * 3


def make_folder(root: Path, counts: dict[str, int]) -> Path:
    for label, n in counts.items():
        (root / label).mkdir(parents=True)
        for i in range(n):
            (root / label / f"take{i}.wav").write_bytes(b"RIFF")
    return root


def test_folder_per_class_gets_stratified_seeded_folds(tmp_path):
    root = make_folder(tmp_path / "mine", {"knock": 10, "doorbell": 10, "kettle": 7})
    data = prepare("folder", root, n_folds=5, seed=3)
    assert data.labels == ("doorbell", "kettle", "knock")
    for label in data.labels:
        per_fold = Counter(c.fold for c in data.clips if c.label == label)
        assert max(per_fold.values()) - min(per_fold.values()) <= 1 and len(per_fold) == 5
    again = prepare("folder", root, n_folds=5, seed=3)
    assert [c.fold for c in again.clips] == [c.fold for c in data.clips]


def test_clips_of_one_source_share_a_fold():
    clips = [Clip(Path(f"{s}-{i}.wav"), "dog", source=s) for s in "abcdef" for i in range(3)]
    clips += [Clip(Path(f"cat{i}.wav"), "cat") for i in range(10)]
    folded = assign_folds(clips, n_folds=3, seed=0)
    for source in "abcdef":
        assert len({c.fold for c in folded if c.source == source}) == 1
    assert sorted(Counter(c.fold for c in folded if c.label == "dog").values()) == [6, 6, 6]
    with pytest.raises(DatasetError, match="at least 2 folds"):
        assign_folds(clips, n_folds=1, seed=0)


def test_manifest_with_and_without_folds(tmp_path):
    make_folder(tmp_path, {"a": 4, "b": 4})
    (tmp_path / "with.csv").write_text("path,label,fold\n" + "".join(
        f"{lab}/take{i}.wav,{lab},{i % 2 + 1}\n" for lab in "ab" for i in range(4)))
    data = prepare("csv", tmp_path / "with.csv")
    assert data.folds == [1, 2] and data.clips[0].path == (tmp_path / "a" / "take0.wav").resolve()
    (tmp_path / "without.csv").write_text("path,label,source\n" + "".join(
        f"{lab}/take{i}.wav,{lab},{lab}{i // 2}\n" for lab in "ab" for i in range(4)))
    data = prepare("csv", tmp_path / "without.csv", n_folds=2)
    assert data.folds == [1, 2]
    assert len({c.fold for c in data.clips if c.source == "a0"}) == 1


@pytest.mark.parametrize(
    "body,message",
    [
        ("path,label,fold\na/take0.wav,a,1\na/take0.wav,a,2\n", "1 clip(s) in more than one fold: "),
        ("path,label,fold\na/take0.wav,a,1\na/take0.wav,a,1\n", "1 clip(s) listed more than once"),
        ("path,label,fold\na/gone.wav,a,1\nb/missing.wav,b,2\n", "2 missing file(s): "),
        ("path,label,fold\na/take0.wav,a,one\n", "fold 'one' is not a whole number"),
        ("path,fold\na/take0.wav,1\n", "missing column(s) label"),
        ("path,label\n,a\n", "empty path or label"),
        ("path,label,fold\na\0.wav,x,1\n", "bad.csv: line 2 holds a NUL character"),  # was a ValueError traceback
    ],
)
def test_bad_manifests_name_the_offenders(tmp_path, body, message):
    make_folder(tmp_path, {"a": 1, "b": 1})
    (tmp_path / "bad.csv").write_text(body)
    with pytest.raises(DatasetError) as caught:
        prepare("csv", tmp_path / "bad.csv")
    assert message in str(caught.value)
    if "missing file" in message:
        assert "gone.wav" in str(caught.value) and "missing.wav" in str(caught.value)


def test_urbansound8k_unknown_label_and_missing_files(tmp_path, us8k_root):
    shutil.copytree(us8k_root, tmp_path / "us8k")
    table = tmp_path / "us8k" / "metadata" / "UrbanSound8K.csv"
    table.write_text(table.read_text().replace(",siren", ",sirens"))
    (tmp_path / "us8k" / "audio" / "fold5" / "100032-3-0-0.wav").unlink()
    with pytest.raises(DatasetError) as caught:
        prepare_urbansound8k(tmp_path / "us8k")
    text = str(caught.value)
    assert "1 unknown label(s): 102853-8-0-0.wav: 'sirens'" in text
    assert "1 missing file(s): " in text and "100032-3-0-0.wav" in text


@pytest.mark.parametrize("column, value", [("classID", "eight"), ("start", "soon"), ("end", "nan")])
def test_urbansound8k_numbers_are_checked_as_numbers(tmp_path, us8k_root, column, value):
    shutil.copytree(us8k_root, tmp_path / "us8k")
    table = tmp_path / "us8k" / "metadata" / "UrbanSound8K.csv"
    lines = table.read_text().splitlines()
    columns = lines[0].split(",")
    row = lines[1].split(",")
    row[columns.index(column)] = value
    table.write_text("\n".join([lines[0], ",".join(row), *lines[2:]]) + "\n")
    with pytest.raises(DatasetError, match=f"UrbanSound8K.csv:2: {column} '{value}' is not a"):
        prepare_urbansound8k(tmp_path / "us8k")


def test_empty_and_unknown_datasets(tmp_path, esc50_root):
    (tmp_path / "empty" / "dog").mkdir(parents=True)
    with pytest.raises(DatasetError, match="class folder\\(s\\) without audio files: dog"):
        prepare("folder", tmp_path / "empty")
    with pytest.raises(DatasetError, match="no class folders"):
        prepare("folder", tmp_path / "empty" / "dog")
    with pytest.raises(DatasetError, match="unknown dataset kind 'audioset'"):
        prepare("audioset", tmp_path)
    with pytest.raises(DatasetError, match="is this the ESC-50 folder"):
        prepare("esc50", tmp_path)
    with pytest.raises(DatasetError, match="no clips in fold\\(s\\) \\[7\\]"):
        prepare("esc10", esc50_root).select([7])


def test_prepare_cli_writes_a_manifest_that_reads_back(tmp_path, esc50_root):
    from tests.conftest import hearai

    out = tmp_path / "esc10.csv"
    done = hearai("prepare", "--dataset", "esc10", "--root", str(esc50_root), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "400 clips, 10 classes" in done.stdout
    again = prepare("csv", out)
    original = prepare("esc10", esc50_root)
    assert [(c.path, c.label, c.fold, c.source) for c in again.clips] == [
        (c.path.resolve(), c.label, c.fold, c.source) for c in original.clips]


def test_ragged_rows_and_bad_numbers_in_metadata_are_named(tmp_path, esc50_root):
    """A short CSV row and damaged ESC-50 metadata gave tracebacks."""
    short = tmp_path / "short.csv"
    short.write_text(f"path,label,fold\n{esc50_root}/audio/1-100032-A-0.flac,dog\n{esc50_root}/audio/1-110389-A-0.flac\n")
    with pytest.raises(DatasetError, match="2 row\\(s\\) whose values do not match the columns: line 2, line 3"):
        prepare("csv", short)
    (tmp_path / "esc").mkdir()
    rows = (esc50_root / "esc50.csv").read_text().splitlines()
    header, first = rows[0], rows[1].split(",")
    first[2] = "xx"  # the target column
    (tmp_path / "esc" / "esc50.csv").write_text("\n".join([header, ",".join(first)]) + "\n")
    with pytest.raises(DatasetError, match="esc50.csv:2: target 'xx' is not a whole number"):
        prepare("esc50", tmp_path / "esc")
