"""The project's catalogue of MQTT normative statements.

This package owns ``statements.csv``, the single list of requirements the
conformance suite measures brokers against, and the code that reads it.  The
CSV holds:

* every numbered ``[MQTT-x.y.z-n]`` statement of MQTT 3.1.1 (141) and
  MQTT 5.0 (251), keyed by version and id exactly as the spec prints them;
* the rules of MQTT 3.1 (protocol name ``MQIsdp``, level 3) the suite checks.
  The 3.1 specification numbers none of its sentences, so these rows carry
  ids of our own, ``V31-<section>-<letter>`` (section numbers of the 3.1
  specification); they cover what 3.1 does differently from 3.1.1 (client
  identifiers, CONNACK, SUBACK) and the basic flows;
* project-defined ids for MQTT 5.0 sentences that declare a Protocol Error
  (``PE-<section>-<letter>``) or a Malformed Packet (``MP-<section>-<letter>``)
  without carrying a numbered id;
* for each row, whether a black-box test talking MQTT to a broker can make it
  fail (``checkable``) and, if not, why.

Ids are only unique per version: ``MQTT-3.1.2-24`` means different things in
3.1.1 and 5.0, so every lookup takes ``(version, id)``.  ``normalise_id``
maps the common alternative spellings of a few ids onto the catalogue key.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

__all__ = [
    "ACTORS",
    "PROJECT_PREFIXES",
    "VERSIONS",
    "Statement",
    "load_catalogue",
    "normalise_id",
    "server_side",
]

VERSIONS = ("3.1", "3.1.1", "5.0")
#: prefixes of ids the project defines (the standards do not number these rules)
PROJECT_PREFIXES = ("PE-", "MP-", "V31-")
ACTORS = ("server", "client", "both")

_CSV_NAME = "statements.csv"
_COLUMNS = (
    "version",
    "id",
    "section",
    "section_title",
    "packet",
    "summary",
    "actor",
    "checkable",
    "not_checkable_reason",
)

# Alternative spellings -> catalogue id, per version.  The catalogue keeps the
# id as the standard prints it (Appendix B spelling where the body differs).
_ALIASES: dict[str, dict[str, str]] = {
    "3.1": {},
    "3.1.1": {
        # printed with a dot before the 7; tools usually write it with a dash
        "MQTT-3.1.2-7": "MQTT-3.1.2.7",
        # printed as MQTT-3-8.3-4; tools usually write the regular form
        "MQTT-3.8.3-4": "MQTT-3-8.3-4",
        # misprint in the Errata 01 body text
        "MQTT-3.3.1.-1": "MQTT-3.3.1-1",
    },
    "5.0": {
        # the body prints the short form; Appendix B has the full one
        "MQTT-4.2-1": "MQTT-4.2.0-1",
        # the body prints a truncated label for this statement
        "T-3.2.2-8": "MQTT-3.2.2-8",
    },
}

_VERSION_ALIASES = {"3.1": "3.1", "3": "3.1", "3.1.1": "3.1.1", "4": "3.1.1", "5.0": "5.0", "5": "5.0"}


@dataclass(frozen=True)
class Statement:
    """One row of the catalogue."""

    version: str
    id: str
    section: str
    section_title: str
    packet: str
    summary: str
    actor: str
    checkable: bool
    not_checkable_reason: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.version, self.id)

    @property
    def numbered(self) -> bool:
        """True for statements the standard itself numbers ([MQTT-...]); False for ids of our own."""
        return not self.id.startswith(PROJECT_PREFIXES)


def _parse_bool(value: str, where: str) -> bool:
    if value == "yes":
        return True
    if value == "no":
        return False
    raise ValueError(f"{where}: checkable must be 'yes' or 'no', got {value!r}")


@lru_cache(maxsize=1)
def _rows() -> tuple[Statement, ...]:
    text = resources.files(__name__).joinpath(_CSV_NAME).read_text(encoding="utf-8")
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != _COLUMNS:
        raise ValueError(f"{_CSV_NAME}: unexpected columns {reader.fieldnames}")
    rows = []
    for lineno, rec in enumerate(reader, start=2):
        where = f"{_CSV_NAME} line {lineno}"
        if rec["version"] not in VERSIONS:
            raise ValueError(f"{where}: unknown version {rec['version']!r}")
        if rec["actor"] not in ACTORS:
            raise ValueError(f"{where}: unknown actor {rec['actor']!r}")
        rows.append(
            Statement(
                version=rec["version"],
                id=rec["id"],
                section=rec["section"],
                section_title=rec["section_title"],
                packet=rec["packet"],
                summary=rec["summary"],
                actor=rec["actor"],
                checkable=_parse_bool(rec["checkable"], where),
                not_checkable_reason=rec["not_checkable_reason"],
            )
        )
    return tuple(rows)


def load_catalogue() -> dict[tuple[str, str], Statement]:
    """Return all statements keyed by ``(version, id)``, in file order.

    Each call returns a fresh dict (the parsed rows are cached), so callers
    may modify it freely.  Raises ``ValueError`` if the CSV has a duplicate
    key or a malformed row.
    """
    catalogue: dict[tuple[str, str], Statement] = {}
    for st in _rows():
        if st.key in catalogue:
            raise ValueError(f"{_CSV_NAME}: duplicate statement {st.version} {st.id}")
        catalogue[st.key] = st
    return catalogue


def normalise_id(version: str, id: str) -> str:  # noqa: A002 - mirrors the column name
    """Return the catalogue spelling of statement ``id`` in MQTT ``version``.

    Accepts the id as the catalogue stores it, optionally wrapped in square
    brackets as in the spec text, and the documented alternative spellings
    (3.1.1: ``MQTT-3.1.2-7`` -> ``MQTT-3.1.2.7``, ``MQTT-3.8.3-4`` ->
    ``MQTT-3-8.3-4``; 5.0: ``MQTT-4.2-1`` -> ``MQTT-4.2.0-1``).  ``version``
    may be ``"3.1"``/``"3"``, ``"3.1.1"``/``"4"`` or ``"5.0"``/``"5"``.

    Raises ``KeyError`` if the version is unknown or the id is not in the
    catalogue for that version.
    """
    ver = _VERSION_ALIASES.get(str(version).strip())
    if ver is None:
        raise KeyError(
            f"unknown MQTT version {version!r}: expected one of {', '.join(VERSIONS)}"
        )
    raw = id.strip()
    if raw.startswith("[") and raw.endswith("]"):
        raw = raw[1:-1].strip()
    canonical = _ALIASES[ver].get(raw, raw)
    known = {key[1] for key in load_catalogue() if key[0] == ver}
    if canonical not in known:
        other = [v for v in VERSIONS if v != ver and (v, _ALIASES[v].get(raw, raw)) in load_catalogue()]
        hint = f" (it exists in MQTT {other[0]}; ids are numbered per version)" if other else ""
        raise KeyError(f"unknown statement id {id!r} for MQTT {ver}{hint}")
    return canonical


def server_side(
    statements: Iterable[Statement] | Mapping[object, Statement],
) -> list[Statement]:
    """Return the statements that bind a server (actor ``server`` or ``both``).

    Accepts any iterable of ``Statement`` or a mapping such as the one
    returned by ``load_catalogue``; order is preserved.
    """
    items = statements.values() if isinstance(statements, Mapping) else statements
    return [st for st in items if st.actor in ("server", "both")]
