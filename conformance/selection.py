"""Choosing conformance tests by the statements they check (pytest plugin, entry point `pytest11`).

    pytest --pyargs conformance --statement 'MQTT-3.3.1-*' --statement MQTT-3.8.4-1
    pytest --pyargs conformance --section 3.8 --mqtt-version 5.0
    pytest --pyargs conformance -k MQTT-3.3.1

This module owns three things:

* statement ids as keywords: every suite test gets the catalogue ids its `spec` markers name for the
  protocol version it runs at, so `-k MQTT-3.3.1` (a substring, as always with -k) finds them;
* `--statement GLOB` (repeatable; shell-style `*`, `?`, `[...]`, case-insensitive; the catalogue's
  alternative spellings such as 3.1.1's `MQTT-3.1.2-7` work when given without a wildcard);
* `--section N` (repeatable): the statements of section N and its subsections (`3.8` takes 3.8, 3.8.3.1...).

Tests matching any `--statement` or `--section` run; the others are deselected. A pattern or section
that names no statement of the selected versions is a usage error with the nearest ids as suggestions,
so a typo never turns into an empty, green run.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterable
from typing import Any

import pytest

from .catalogue import Statement, load_catalogue, normalise_id

__all__ = ["Selection", "item_statements", "matches_section", "pattern_matches"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mqtt-conformance", "MQTT conformance suite")
    group.addoption("--statement", action="append", default=[], metavar="GLOB",
                    help="run only the tests that check a statement matching GLOB, e.g. 'MQTT-3.3.1-*' or V31-3.2-a "
                         "(repeatable; python -m conformance list shows the tests per statement)")
    group.addoption("--section", action="append", default=[], metavar="N",
                    help="run only the tests that check a statement of spec section N or its subsections, "
                         "e.g. 3.8 (repeatable)")


# --------------------------------------------------------------------------------- sans-IO matching


def pattern_matches(pattern: str, version: str, statement_id: str) -> bool:
    """Does `pattern` (a glob or a plain id, brackets allowed) name `statement_id` of MQTT `version`?"""
    text = pattern.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1].strip()
    if not any(char in text for char in "*?["):
        try:
            return normalise_id(version, text) == statement_id
        except KeyError:
            return text.upper() == statement_id.upper()
    return fnmatch.fnmatchcase(statement_id.upper(), text.upper())


def matches_section(section: str, wanted: str) -> bool:
    """Is `section` (e.g. "3.8.3.1") the section `wanted` ("3.8") or one of its subsections?"""
    wanted = wanted.strip().rstrip(".").removeprefix("§")
    return section == wanted or section.startswith(wanted + ".")


class Selection:
    """The --statement / --section choice, checked against the catalogue of the selected versions."""

    def __init__(self, patterns: Iterable[str], sections: Iterable[str], versions: Iterable[str]):
        self.patterns = [p for p in patterns if p.strip()]
        self.sections = [s for s in sections if s.strip()]
        self.versions = tuple(versions)
        self.statements = [st for st in load_catalogue().values() if st.version in self.versions]

    @property
    def active(self) -> bool:
        return bool(self.patterns or self.sections)

    def chosen(self, statement: Statement) -> bool:
        return any(pattern_matches(p, statement.version, statement.id) for p in self.patterns) or \
            any(matches_section(statement.section, s) for s in self.sections)

    def check(self) -> None:
        """ValueError for a pattern or section that names no statement of the selected versions."""
        versions = ", ".join(self.versions)
        for pattern in self.patterns:
            if not any(pattern_matches(pattern, st.version, st.id) for st in self.statements):
                ids = sorted({st.id for st in self.statements})
                close = difflib.get_close_matches(pattern.strip("[] ").upper(), [i.upper() for i in ids], n=3)
                hint = f"; did you mean {' or '.join(close)}?" if close else ""
                raise ValueError(f"--statement {pattern!r} matches no statement of MQTT {versions}{hint}")
        for section in self.sections:
            if not any(matches_section(st.section, section) for st in self.statements):
                known = sorted({st.section for st in self.statements})
                close = difflib.get_close_matches(section, known, n=3)
                hint = f"; did you mean {' or '.join(close)}?" if close else ""
                raise ValueError(f"--section {section!r} has no statement in MQTT {versions}{hint}")

    def wants(self, statements: list[tuple[str, str]]) -> bool:
        """Does a test that checks these (version, id) statements belong to the selection?"""
        catalogue = load_catalogue()
        return any(self.chosen(catalogue[key]) for key in statements if key in catalogue)


# ------------------------------------------------------------------------------------- pytest hooks


def item_statements(item: pytest.Item) -> list[tuple[str, str]]:
    """(version, catalogue id) pairs a suite test checks at the protocol version it runs at."""
    from .items import LEVEL_NAMES, spec_versions

    markers = list(item.iter_markers("spec"))
    if not markers:
        return []
    try:
        per_version = spec_versions(markers)
    except ValueError:
        return []
    level = getattr(getattr(item, "callspec", None), "params", {}).get("version")
    if level is not None and level in LEVEL_NAMES:
        wanted = [LEVEL_NAMES[level]]
    else:
        wanted = list(per_version)
    return [(version, sid) for version in wanted for sid in per_version.get(version, [])]


def pytest_configure(config: pytest.Config) -> None:
    from .items import parse_versions

    patterns, sections = config.getoption("--statement") or [], config.getoption("--section") or []
    if not patterns and not sections:
        return
    try:
        selection = Selection(patterns, sections, parse_versions(config.getoption("--mqtt-version")))
        selection.check()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_selection_key] = selection


_selection_key = pytest.StashKey[Selection]()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    # tryfirst: the keywords must be in place before -k deselects (pytest's own hook runs later)
    selection = config.stash.get(_selection_key, None)
    kept, dropped = [], []
    for item in items:
        statements = item_statements(item)
        for _, statement_id in statements:
            item.extra_keyword_matches.add(statement_id)
        if selection is None:
            continue
        (kept if statements and selection.wants(statements) else dropped).append(item)
    if selection is not None and dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


# -------------------------------------------------------------------------- what a run left out
# A run that selects tests (-k, -m, --statement, --section) leaves most statements untested on purpose.
# The results header says so, so that the report can tell "not selected" from "untested".

_selected_key = pytest.StashKey[list]()


def _selection_options(config: pytest.Config) -> dict[str, Any]:
    given = {"statement": config.getoption("--statement") or [], "section": config.getoption("--section") or [],
             "keyword": config.getoption("keyword") or "", "markexpr": config.getoption("markexpr") or ""}
    return {name: value for name, value in given.items() if value}


def pytest_collection_finish(session: pytest.Session) -> None:
    config = session.config
    if _selection_options(config):
        config.stash[_selected_key] = sorted({pair for item in session.items for pair in item_statements(item)})


def results_header(config: pytest.Config) -> dict[str, Any] | None:
    """For the results file: the selection options and the (version, statement id) pairs the selected
    tests check; None when the run chose no subset."""
    options = _selection_options(config)
    if not options:
        return None
    return {"options": options, "statements": [list(pair) for pair in config.stash.get(_selected_key, [])]}
