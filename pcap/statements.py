"""Which normative statements govern a field of a packet: an index over conformance's catalogue.

The catalogue (conformance/catalogue) gives each statement its section, the section's title and the
packet it belongs to. A field of a packet is governed by the statements of the section that defines
it: the PUBLISH Topic Name by those of 3.3.2.1 ("Topic Name"), a CONNACK's Maximum QoS property by
those of 3.2.2.3.4, and so on. `field_ids(version, packet, title)` finds them by the section title,
`topic_ids`, `qos_flow_ids` ... add the rules of chapter 4 and 2 that a field's value brings in.

MQTT 3.1 numbers no statements; the catalogue holds a few project-defined ones (V31-...) per packet.
A 3.1 packet gets those as its packet-level statements, and its fields the 3.1.1 statements, which
restate 3.1's rules (the level-3 CONNECT differs in its protocol name and Client Identifier length).
"""

from __future__ import annotations

import re
from collections import defaultdict
from functools import lru_cache

from conformance.catalogue import load_catalogue

__all__ = ["catalogue_version", "field_ids", "group_ids", "packet_ids", "summary"]


def catalogue_version(protocol_level: int | None) -> str:
    return "5.0" if protocol_level == 5 else "3.1.1"


def _title_key(packet: str, title: str) -> str:
    title = title.lower()
    title = re.sub(r"\s*\(.*?\)", "", title)  # "client identifier (clientid)"
    prefix = packet.lower() + " "
    if title.startswith(prefix) and packet:
        title = title[len(prefix):]  # "puback reason code" -> "reason code"
    return title.strip()


@lru_cache(maxsize=1)
def _index():
    by_title: dict[tuple[str, str, str], list[tuple[str, str]]] = defaultdict(list)  # -> [(section, id)]
    by_group: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    texts: dict[tuple[str, str], str] = {}
    for (version, statement_id), statement in load_catalogue().items():
        texts[(version, statement_id)] = statement.summary
        key = (version, statement.packet, _title_key(statement.packet, statement.section_title))
        by_title[key].append((statement.section, statement_id))
        by_group[(version, statement.packet)].append((statement.section, statement_id))
    return by_title, by_group, texts


def field_ids(level: int | None, packet: str, *titles: str, section: str | None = None) -> tuple[str, ...]:
    """Statement ids of `packet`'s sections titled one of `titles` (case-insensitive; a leading packet
    name and a parenthesised note in the title are ignored). `section` keeps only sections that start
    with it (CONNECT's User Property exists among the CONNECT properties and the Will properties)."""
    by_title, _, _ = _index()
    version = catalogue_version(level)
    found: list[str] = []
    for title in titles:
        for statement_section, statement_id in by_title.get((version, packet, _title_key(packet, title)), ()):
            if section is None or statement_section == section or statement_section.startswith(section + "."):
                if statement_id not in found:
                    found.append(statement_id)
    return tuple(found)


def group_ids(level: int | None, group: str, section: str | None = None) -> tuple[str, ...]:
    """Statement ids of a non-packet group of the catalogue ('qos-flow', 'topics', 'packet-id' ...),
    optionally only those of one section (e.g. '4.3.2' for QoS 1)."""
    _, by_group, _ = _index()
    return tuple(statement_id for statement_section, statement_id in by_group.get((catalogue_version(level), group), ())
                 if section is None or statement_section == section or statement_section.startswith(section + "."))


def packet_ids(level: int | None, packet: str) -> tuple[str, ...]:
    """Statement ids about the packet as a whole: its introduction (section 3.N), its fixed header
    and its actions (the sections titled "Response" or "Actions")."""
    by_title, by_group, _ = _index()
    version = catalogue_version(level)
    chosen = [statement_id for _, statement_id in by_group.get(("3.1", packet), ())] if level == 3 else []
    chosen += [statement_id for section, statement_id in by_group.get((version, packet), ()) if section.count(".") == 1]
    for title in ("fixed header", "actions", "response"):
        chosen += [statement_id for _, statement_id in by_title.get((version, packet, title), ())]
    return tuple(dict.fromkeys(chosen))


def summary(level: int | None, statement_id: str) -> str:
    """The catalogue's one-line summary of a statement ('' if unknown)."""
    _, _, texts = _index()
    if level == 3 and ("3.1", statement_id) in texts:
        return texts[("3.1", statement_id)]
    return texts.get((catalogue_version(level), statement_id), "")
