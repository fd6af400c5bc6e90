"""What the docs promise and the packaging declares: the README's quick start, the example target profile,
tox passing HYPOTHESIS_PROFILE through, and a LICENSE that matches pyproject.toml."""

from __future__ import annotations

import configparser
import re
import tomllib
from pathlib import Path

from conformance.targets import load_profile

REPO = Path(__file__).resolve().parents[1]


def test_quick_start_is_two_commands():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]
    assert commands == ["./run report", "./run tests"]
    assert "tox -l" not in readme and "./run tox list" in readme


def test_example_target_profile_loads(tmp_path):
    text = (REPO / "conformance" / "README.md").read_text(encoding="utf-8")
    example = re.search(r"```toml\n(.*?)```", text, re.DOTALL).group(1)
    path = tmp_path / "my-broker.toml"
    path.write_text(example, encoding="utf-8")
    profile = load_profile(path)
    assert profile.name == "mybroker" and profile.version_string() == "mybroker 3.2.1"
    assert profile.feature("shared_subscriptions") is False and 13 in profile.known_deviations
    assert profile.websocket == {"host": "127.0.0.1", "port": 8080}


def test_tox_passes_the_conformance_profile_and_keeps_the_report_env_small():
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(REPO / "tox.ini", encoding="utf-8")
    assert "HYPOTHESIS_PROFILE = {env:HYPOTHESIS_PROFILE:ci}" in tox["testenv"]["setenv"]
    # the report env overrides the test extras: only the core dependencies and the docker client
    assert tox["testenv:report"]["extras"].split() == ["interop"]
    assert "python -m reports run" in tox["testenv:report"]["commands"]


def test_license_matches_pyproject():
    declared = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["license"]["text"]
    assert declared == "EPL-2.0 OR BSD-3-Clause"
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert "EPL-2.0 OR BSD-3-Clause" in text
    assert "Eclipse Public License - v 2.0" in text and "BSD 3-Clause License" in text
