"""Every statement id refbroker cites exists in the catalogue, for the version it names.

refbroker's comments tie each rule to its normative statement, e.g. `# [MQTT-3.3.1-5]`, and where the
two specifications number a rule differently they say which version they mean:
`[MQTT-3.1.3-8] (3.1.1) / [MQTT-3.1.3-8] (5.0)`. A reader walks from the spec to the code and back by
these ids, so a wrong one sends them to the wrong sentence. Forms understood:

    [MQTT-3.3.1-5]               exists in 3.1.1 or 5.0
    [MQTT-3.1.2-24] (3.1.1)      exists in 3.1.1
    [MQTT-3.3.1-9/10/11] (5.0)   MQTT-3.3.1-9, -10 and -11 all exist in 5.0
    rule="MQTT-3.1.0-2"          an error's rule: exists in 3.1.1 or 5.0
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conformance.catalogue import VERSIONS, normalise_id

REFBROKER = Path(__file__).resolve().parents[2] / "refbroker"
CITATION = re.compile(r"\[(MQTT-[0-9.]+-\d+(?:/\d+)*)\]((?:\s*\((?:3\.1\.1|5\.0)\))?)")
RULE_ARGUMENT = re.compile(r"""rule=["'](MQTT-[0-9.]+-\d+)["']""")


def _expand(cited: str) -> list[str]:
    """'MQTT-3.3.1-9/10/11' -> ['MQTT-3.3.1-9', 'MQTT-3.3.1-10', 'MQTT-3.3.1-11']."""
    stem, _, numbers = cited.rpartition("-")
    return [f"{stem}-{number}" for number in numbers.split("/")]


def _citations() -> list[tuple[str, int, str, tuple[str, ...]]]:
    """(file, line, statement id, versions it may belong to) for every citation in refbroker."""
    found = []
    for path in sorted(REFBROKER.rglob("*.py")) + sorted(REFBROKER.rglob("*.md")):
        text = path.read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(), start=1):
            where = str(path.relative_to(REFBROKER.parent))
            for match in CITATION.finditer(line):
                version = match.group(2).strip(" ()")
                versions = (version,) if version else VERSIONS
                for statement in _expand(match.group(1)):
                    found.append((where, number, statement, versions))
            for match in RULE_ARGUMENT.finditer(line):
                found.append((where, number, match.group(1), VERSIONS))
    return found


def _in_catalogue(version: str, statement: str) -> bool:
    try:
        normalise_id(version, statement)
    except KeyError:
        return False
    return True


def test_refbroker_cites_statements():
    assert len(_citations()) > 200, "the citation pattern no longer finds refbroker's spec references"


@pytest.mark.parametrize("where, line, statement, versions",
                         [pytest.param(*c, id=f"{c[0]}:{c[1]}:{c[2]}") for c in _citations()])
def test_cited_statement_exists_for_its_version(where, line, statement, versions):
    known = [v for v in versions if _in_catalogue(v, statement)]
    assert known, f"{where}:{line} cites {statement} for {' or '.join(versions)}, which has no such statement"
