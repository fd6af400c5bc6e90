"""The HTML page of `python -m pcap explain --html`: the explanation model of pcap/explain.py rendered
with the template templates/explain.html.j2 (one self-contained file, no script, works offline)."""

from __future__ import annotations

from importlib import resources

import jinja2

from . import statements
from .explain import SessionExplanation

__all__ = ["render_html"]


def render_html(sessions: list[SessionExplanation], *, source: str, skipped: list[str] = ()) -> str:
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = environment.from_string(
        resources.files("pcap").joinpath("templates/explain.html.j2").read_text(encoding="utf-8"))
    levels = {"5.0": 5, "3.1.1": 4, "3.1": 3}
    views = [dict(vars(s), level=levels.get(s.version)) for s in sessions]
    return template.render(sessions=views, source=source, skipped=list(skipped),
                           summary=lambda level, statement_id: statements.summary(level, statement_id))
