"""What the conformance plugin knows about each test item, shared with its helpers (allure_support).

Owns: the protocol version names and levels, the pytest stash keys under which the plugin keeps a
suite item's record and clients, reading a test's `spec` markers (`spec_versions`,
`statement_ids`), the level a parametrised item runs at (`item_level`), and `traces_of` (the
results file's shape of a test's packet traces). The plugin writes these stashes; other modules only
read them through the functions here.
"""

from __future__ import annotations

from typing import Any

import pytest

__all__ = [
    "CLIENTS_KEY",
    "LEVEL_NAMES",
    "RECORD_KEY",
    "VERSION_LEVELS",
    "parse_versions",
    "is_recorded",
    "item_level",
    "item_version",
    "record_of",
    "spec_versions",
    "statement_ids",
    "traces_of",
]

#: MQTT 3.1 is protocol name "MQIsdp" at level 3; 3.1.1 and 5.0 are "MQTT" at levels 4 and 5
VERSION_LEVELS = {"3.1": 3, "3.1.1": 4, "5.0": 5}
LEVEL_NAMES = {level: name for name, level in VERSION_LEVELS.items()}


def parse_versions(text: str | None) -> tuple[str, ...]:
    text = (text or "all").strip()
    if text == "all":
        return tuple(VERSION_LEVELS)
    versions = tuple(part.strip() for part in text.split(","))
    for version in versions:
        if version not in VERSION_LEVELS:
            raise ValueError(f"--mqtt-version: unknown version {version!r}; expected 3.1, 3.1.1, 5.0 or all")
    return versions

#: the plugin's record of a suite item (outcome, reason, known deviation, duration ...)
RECORD_KEY = pytest.StashKey[dict]()
#: the raw clients a suite item opened (their traces go to the results file)
CLIENTS_KEY = pytest.StashKey[list]()


def is_recorded(item: pytest.Item) -> bool:
    """Is `item` a conformance test whose outcome goes to the results file?"""
    return RECORD_KEY in item.stash


def record_of(item: pytest.Item) -> dict:
    return item.stash[RECORD_KEY]


def item_level(item: pytest.Item) -> int | None:
    """3, 4 or 5 for a test parametrised by the plugin's `version` fixture, else None."""
    return getattr(getattr(item, "callspec", None), "params", {}).get("version")


def item_version(item: pytest.Item) -> str | None:
    level = item_level(item)
    return LEVEL_NAMES.get(level) if level is not None else None


def traces_of(clients: list[Any]) -> list[dict]:
    """[{client, client_id, packets}] for the clients a test opened (RawClient or anything with a trace)."""
    return [{"client": c.name, "client_id": c.client_id, "packets": c.trace} for c in clients]


def spec_versions(markers: list[pytest.Mark], catalogue_check: bool = True) -> dict[str, list[str]]:
    """{version: [statement ids]} named by a test's `spec` markers, ids in catalogue spelling.

    A marker without `version` applies to each version whose catalogue has its ids. Raises ValueError
    for unknown ids, versions, or markers without ids.
    """
    from .catalogue import normalise_id

    result: dict[str, list[str]] = {}
    for mark in markers:
        ids = [str(i) for i in mark.args]
        if not ids:
            raise ValueError("@pytest.mark.spec needs at least one statement id")
        version = mark.kwargs.get("version")
        unknown_kwargs = set(mark.kwargs) - {"version"}
        if unknown_kwargs:
            raise ValueError(f"@pytest.mark.spec: unknown argument(s) {', '.join(sorted(unknown_kwargs))}")
        if version is not None and str(version) not in VERSION_LEVELS:
            raise ValueError(f"@pytest.mark.spec: version must be one of {', '.join(VERSION_LEVELS)}, got {version!r}")
        if version is not None:
            candidates = [str(version)]
        elif not catalogue_check:
            candidates = list(VERSION_LEVELS)
        else:
            # Without `version`, the marker applies to the versions whose catalogue has its ids. All its
            # ids must agree: a marker mixing a both-version id with a one-version id is a tagging slip.
            homes = {}
            for statement in ids:
                found = []
                for candidate in VERSION_LEVELS:
                    try:
                        normalise_id(candidate, statement)
                        found.append(candidate)
                    except KeyError:
                        pass
                homes[statement] = tuple(found)
            unknown = [statement for statement, found in homes.items() if not found]
            if unknown:
                raise ValueError(f"@pytest.mark.spec: {', '.join(unknown)} not a statement of MQTT "
                                 f"{', '.join(VERSION_LEVELS)}")
            if len(set(homes.values())) > 1:
                detail = "; ".join(f"{s} in {' and '.join(v)}" for s, v in homes.items())
                raise ValueError(f"@pytest.mark.spec: ids of different versions in one marker ({detail}); "
                                 "split it into markers with version=")
            candidates = list(next(iter(homes.values())))
        for candidate in candidates:
            normalised = []
            for statement in ids:
                if not catalogue_check:
                    normalised.append(statement)
                    continue
                try:
                    normalised.append(normalise_id(candidate, statement))
                except KeyError as exc:
                    raise ValueError(f"@pytest.mark.spec: {exc.args[0] if exc.args else exc}") from None
            for statement in normalised:
                if statement not in result.setdefault(candidate, []):
                    result[candidate].append(statement)
    return result


def statement_ids(item: pytest.Item, level: int | None = None) -> list[str]:
    """The catalogue ids `item` checks at protocol level `level` (all versions' ids when None)."""
    if level is None:
        level = item_level(item)
    markers = list(item.iter_markers("spec"))
    if not markers:
        return []
    # iter_markers yields the closest (function) markers first, in reverse order of decoration; the
    # first statement is the one the topmost marker lists first, so reverse to source order.
    markers.reverse()
    try:
        per_version = spec_versions(markers)
    except ValueError:
        return [str(i) for mark in markers for i in mark.args]
    if level is None:
        return [i for ids in per_version.values() for i in ids]
    return per_version.get(LEVEL_NAMES.get(level, ""), [])
