"""The README and docs tell the truth: short, about the product, examples that run, the measured figures."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hearai import DEFAULT_MODEL, audio
from hearai.detect.measured import EAR, SHIPPED
from tests.conftest import hearai
from tests.test_shipped import _clip

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
PAGE = sorted(p for kind in ("html", "js", "css") for p in (REPO / "hearai" / "serve" / "static").glob(f"*.{kind}"))
# How the project was developed is not the user's business: issue numbers, sessions, lent machines, history.
DEVELOPMENT_TALK = re.compile(
    r"\bissue\s*#?\d+|\bsessions?\b|\blease[sd]?\b|\blent\b|\bcommit [0-9a-f]{7,}|\bnot yet (run|built|measured)"
    r"|\brehears|\bsprint\b", re.IGNORECASE)


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)|<img [^>]*src=\"([^\"]+)\"|<a [^>]*href=\"([^\"]+)\"")


def heading_anchors(page: Path) -> set[str]:
    """The anchors a repository's web page gives the headings of ``page`` (lower case, punctuation dropped,
    spaces to hyphens, a repeated heading numbered)."""
    anchors: set[str] = set()
    outside_code = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    for title in re.findall(r"^#{1,6}\s+(.+?)\s*$", outside_code, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")
        anchor, n = slug, 0
        while anchor in anchors:
            n += 1
            anchor = f"{slug}-{n}"
        anchors.add(anchor)
    return anchors


def relative_links(page: Path) -> list[str]:
    found = [next(g for g in match.groups() if g) for match in LINK.finditer(page.read_text())]
    return [link for link in found if not re.match(r"[a-z]+:", link)]


def test_the_readme_is_short():
    assert len((REPO / "README.md").read_text().splitlines()) <= 250


def broken_links(page: Path) -> list[str]:
    """Relative links and images of ``page`` that lead nowhere when it is read where it lies."""
    broken = []
    for link in relative_links(page):
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists() or (anchor and target.suffix == ".md" and anchor not in heading_anchors(target)):
            broken.append(link)
    return broken


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_every_relative_link_and_image_works_on_the_repositorys_web_page(page):
    assert broken_links(page) == [], page.relative_to(REPO)


def test_the_link_check_finds_a_broken_link_image_and_anchor(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "picture.png").write_bytes(b"")
    page = tmp_path / "docs" / "page.md"
    page.write_text("# A title, with words\n## Run it\n## Run it\n[x](docs/picture.png) ![y](picture.png) "
                    "[z](#a-title-with-words) [w](#run-it-1) [v](#nowhere) <img src=\"gone.png\">\n")
    assert heading_anchors(page) == {"a-title-with-words", "run-it", "run-it-1"}
    assert relative_links(page) == ["docs/picture.png", "picture.png", "#a-title-with-words", "#run-it-1",
                                    "#nowhere", "gone.png"]
    assert broken_links(page) == ["docs/picture.png", "#nowhere", "gone.png"]


@pytest.mark.parametrize("path", DOCS + PAGE + sorted((REPO / "hearai").rglob("*.py")), ids=lambda p: p.name)
def test_no_word_of_how_the_project_is_developed(path):
    found = [m.group(0) for m in DEVELOPMENT_TALK.finditer(path.read_text())]
    assert found == [], f"{path.relative_to(REPO)}: {found}"


def test_no_verb_help_speaks_of_development_or_leaves_a_verb_undescribed():
    from hearai.cli import build_parser

    parser = build_parser()
    verbs = next(a for a in parser._actions if a.dest == "verb").choices
    for name, verb in verbs.items():
        text = verb.format_help()
        assert not DEVELOPMENT_TALK.search(text), (name, DEVELOPMENT_TALK.search(text))
        assert verb.description, f"hearai {name} --help has no description"
        after_usage = text.split("\n\n", 1)[1]
        assert max(len(line) for line in after_usage.splitlines()) <= 100, f"hearai {name} --help has unwrapped lines"


def test_the_latency_is_one_measured_statement_in_the_docs_the_cli_and_the_server():
    readme, listening = (REPO / "README.md").read_text(), (REPO / "docs" / "listening.md").read_text()
    statement = EAR.latency_statement()
    assert statement in " ".join(readme.split()) and statement in " ".join(listening.split())
    assert statement in " ".join(hearai("listen", "--help").stdout.split())
    every = " ".join(" ".join(p.read_text().split()) for p in DOCS)
    for stale in ("quarter of a second", "within about 1 s", "alerts within 0.4 s"):
        assert stale not in every
    pretrained, detection = (" ".join((REPO / "docs" / name).read_text().split())
                             for name in ("pretrained.md", "detection.md"))
    for figures, page in ((EAR, pretrained), (SHIPPED, detection)):
        for number in (f"{figures.latency_median:.2f}", f"{figures.latency_p95:.2f}",
                       f"{figures.segment_f1[0]:.2f} ± {figures.segment_f1[1]:.2f}",
                       f"{figures.false_alarms_per_hour[0]:g} ± {figures.false_alarms_per_hour[1]:g}"):
            assert number in page, (figures.name, number)


@pytest.fixture(scope="module")
def example_folder(tmp_path_factory, esc50_root) -> Path:
    """The files the docs' examples name: a knock, a siren, a dog, a street recording and a trained model."""
    folder = tmp_path_factory.mktemp("examples")
    for name, label in (("door.wav", "door_wood_knock"), ("siren.wav", "siren"), ("dog.flac", "dog")):
        sf.write(folder / name, audio.load(_clip(esc50_root, label), sample_rate=16_000), 16_000)
    street = np.concatenate([audio.load(_clip(esc50_root, label), sample_rate=44_100)
                             for label in ("car_horn", "engine", "siren")])
    sf.write(folder / "street.flac", street, 44_100)
    shutil.copy(DEFAULT_MODEL, folder / "esc50.onnx")  # what 'hearai train' then 'hearai export' make
    shutil.copy(DEFAULT_MODEL.with_suffix(".safetensors"), folder / "esc50.safetensors")
    return folder


def _python_blocks() -> list[tuple[str, int, str]]:
    blocks = []
    for page in DOCS:
        for k, code in enumerate(re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.DOTALL)):
            blocks.append((page.name, k, code))
    return blocks


@pytest.mark.parametrize("page,k,code", _python_blocks(), ids=lambda v: str(v)[:20])
def test_every_python_example_runs_as_written(page, k, code, example_folder, ear_home):
    done = subprocess.run([sys.executable, "-c", code], cwd=example_folder, env=ear_home, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, f"{page} example {k + 1}:\n{done.stderr}"
    assert done.stdout.strip() or "print" not in code, f"{page} example {k + 1} printed nothing"


def test_the_readme_example_says_what_crossed_the_threshold(example_folder, ear_home):
    code = next(code for page, _, code in _python_blocks() if page == "README.md")
    done = subprocess.run([sys.executable, "-c", code], cwd=example_folder, env=ear_home, capture_output=True,
                          text=True, timeout=300)
    assert done.stdout.startswith("alert: knock"), done.stdout
