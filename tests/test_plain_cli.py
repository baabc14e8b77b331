"""The command line for people: a mistyped model name or flag gets the closest right one, a model given after the
files is recognised, a web address and an out-of-range score are said in plain words, and the default model is one
and the same in Python and on the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hearai import DEFAULT_MODEL
from tests.conftest import DATA, assert_one_line_error, hearai

CLIP = DATA / "esc50" / "audio" / "1-100032-A-0.flac"  # a dog


@pytest.mark.parametrize("args", [("predict", "x.wav", "eer"), ("predict", "eer", "x.wav"),
                                  ("detect", "eer", "x.wav")])
def test_a_mistyped_model_name_gets_the_closest_one_wherever_it_stands(args, tmp_path):
    done = hearai(*args, cwd=tmp_path)
    assert_one_line_error(done, args[0], "eer: no such file, and no model of that name; did you mean 'ear'?",
                          "models: ear, efficientat-mn04")


def test_an_unknown_networks_name_gets_the_known_one(tmp_path):
    done = hearai("predict", "efficientat-mn10", "x.wav", cwd=tmp_path)
    assert_one_line_error(done, "predict", "did you mean 'efficientat-mn04'?")


def test_a_mistyped_flag_shows_the_verbs_usage_and_the_closest_flag(tmp_path):
    done = hearai("detect", "--treshold", "0.5", "x.wav", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("usage: hearai detect ")
    assert done.stderr.rstrip().endswith("did you mean --threshold for --treshold?")


def test_a_web_address_is_said_to_be_unsupported_not_collapsed_into_a_missing_file(tmp_path):
    done = hearai("predict", "https://example.com/m.safetensors", "x.wav", cwd=tmp_path)
    assert_one_line_error(done, "predict", "https://example.com/m.safetensors: a web address",
                          "download the file first")


@pytest.mark.parametrize("value", ["2", "0", "half"])
def test_a_threshold_out_of_range_is_said_in_the_options_words(value, tmp_path):
    done = hearai("detect", "--threshold", value, str(CLIP), cwd=tmp_path)
    assert done.returncode == 2 and "DetectConfig" not in done.stderr
    assert f"argument --threshold: a score between 0 and 1, such as 0.5; got '{value}'" in done.stderr


def test_a_release_above_the_threshold_is_said_in_the_options_words(tmp_path):
    done = hearai("detect", "--threshold", "0.3", "--release", "0.5", str(CLIP), cwd=tmp_path)
    assert_one_line_error(done, "detect", "--release 0.5 is above --threshold 0.3")


def test_a_model_given_after_the_files_is_recognised(tmp_path):
    first = hearai("predict", str(DEFAULT_MODEL), str(CLIP), cwd=tmp_path)
    last = hearai("predict", str(CLIP), str(DEFAULT_MODEL), cwd=tmp_path)
    assert first.returncode == last.returncode == 0, last.stderr
    assert json.loads(last.stdout) == json.loads(first.stdout)


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True, text=True, env=env,
                          timeout=300)


def test_the_default_model_is_the_ear_in_python_as_on_the_command_line(ear_home, tmp_path):
    listed = _python("import hearai; print('|'.join(hearai.load().labels))", ear_home)
    assert listed.returncode == 0 and listed.stderr == "", listed.stderr
    predicted = hearai("predict", str(CLIP), env=ear_home, cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    labels = listed.stdout.strip().split("|")
    assert labels == list(json.loads(predicted.stdout)["probabilities"]) and "smoke alarm" in labels


def test_without_the_ear_python_and_the_command_line_say_so_and_use_the_shipped_detector(tmp_path):
    listed = _python("import hearai; print(len(hearai.load().labels))", None)  # the tests' cache has no ear
    assert listed.stdout.strip() == "50"
    assert "listening with the ESC-50 detector" in listed.stderr and "hearai pull efficientat-mn04" in listed.stderr
