""""Did you mean ...?" for mistyped options, commands and refbroker config keys (refbroker.cli_hints)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from refbroker.cli_hints import SuggestingArgumentParser, suggestion_text
from refbroker.config import ConfigError, parse_config


def test_config_key_suggestion():
    with pytest.raises(ConfigError, match=r"unknown configuration key 'lisener' \(did you mean listener\?\)"):
        parse_config("lisener 1883\n")
    with pytest.raises(ConfigError, match=r"unknown configuration key 'zzzz'$"):
        parse_config("zzzz 1\n")
    assert parse_config("allow_anonymous true\n") is not None


def test_refbroker_option_suggestion():
    result = subprocess.run([sys.executable, "-m", "refbroker", "--verbos"], capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "Unknown option '--verbos'. (did you mean --verbose?)" in result.stderr


def test_argparse_suggestions(capsys):
    parser = SuggestingArgumentParser(prog="tool")
    commands = parser.add_subparsers(dest="command", required=True)
    sub = commands.add_parser("build")
    sub.add_argument("--output")
    with pytest.raises(SystemExit):
        parser.parse_args(["biuld"])
    err = capsys.readouterr().err
    assert "invalid choice: 'biuld'" in err and err.rstrip().endswith("(did you mean build?)")
    with pytest.raises(SystemExit):
        parser.parse_args(["build", "--outptu", "x"])
    assert "unrecognized arguments: --outptu (did you mean --output?) x" in capsys.readouterr().err
    assert suggestion_text("tets", ["tests", "report"]) == " (did you mean tests?)"


def test_run_script_suggests_commands():
    script = Path(__file__).resolve().parents[1] / "run"
    result = subprocess.run(["bash", str(script), "reprot"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "unknown command 'reprot' (did you mean report?)" in result.stderr
