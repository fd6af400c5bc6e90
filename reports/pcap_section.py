"""The report's "Upgrade check" section: what changes on the wire between mosquitto versions.

Its input is the JSON document `python -m pcap corpus upgrade-table` writes (schema
"mqtt-toolkit-pcap-upgrade/1"): for each pair, one version's reference captures (pcap/captures/)
replayed against another version or target, with the differences by kind and, per differing capture,
the test it comes from and a readable diff. `python -m reports build ... --upgrade-table FILE` adds the
section; this module only reads that file and renders HTML, the rest of the report is not touched.
"""

from __future__ import annotations

import json
from pathlib import Path

import jinja2
from markupsafe import Markup

__all__ = ["UpgradeTableError", "load_upgrade_table", "render_upgrade_section"]

SCHEMA = "mqtt-toolkit-pcap-upgrade/1"

_TEMPLATE = """
<section id="upgrade">
  <h2>Upgrade check: what changes on the wire</h2>
  <p class="muted">Each row replays the reference captures of one mosquitto version (the conformance suite's
  conversations, recorded from the real broker: pcap/captures/) against another version or target, and counts
  how the broker's answers differ. Generated {{ table.generated }} by <code>{{ table.generated_by }}</code>.
  What may legitimately differ between two runs is normalised first:</p>
  <ul class="muted">{% for rule in table.rules %}<li><b>{{ rule.name }}</b>: {{ rule.text }}</li>{% endfor %}</ul>
  <table id="upgrade-table">
    <tr><th>from</th><th>to</th><th class="num">captures</th><th class="num">differ</th><th class="num">sessions differ</th><th>differences by kind</th></tr>
    {% for pair in table.pairs %}
    <tr><td>mosquitto {{ pair.from }}</td><td>{{ pair.to }}<br><span class="muted">{{ pair.to_broker }}</span></td>
      <td class="num">{{ pair.captures }}</td><td class="num">{{ pair.differing_captures }}</td>
      <td class="num">{{ pair.differing_sessions }} / {{ pair.sessions }}</td>
      <td>{% for kind, n in pair.kinds|dictsort(by="value", reverse=true) %}{{ kind }}: {{ n }}{% if not loop.last %}<br>{% endif %}{% else %}none{% endfor %}</td></tr>
    {% endfor %}
  </table>
  {% for pair in table.pairs if pair.differing %}
  <details class="upgrade-pair"><summary>{{ pair.from }} &rarr; {{ pair.to }}: the {{ pair.differing|length }} capture(s) that differ</summary>
    {% for item in pair.differing %}
    <details><summary>{{ item.test or item.file }} <span class="muted">({% for k, n in item.kinds.items() %}{{ k }} {{ n }}{% if not loop.last %}, {% endif %}{% endfor %}{% if item.statements %}; {{ item.statements|join(' ') }}{% endif %})</span></summary>
      <pre class="trace">{{ item.diff|join('\n') }}</pre>
    </details>
    {% endfor %}
  </details>
  {% endfor %}
</section>
"""


class UpgradeTableError(Exception):
    """The upgrade-table file cannot be used; the message names the file and why."""


def load_upgrade_table(path: str | Path) -> dict:
    path = Path(path)
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UpgradeTableError(f"{path}: cannot read it: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UpgradeTableError(f"{path}: not JSON: {exc}") from None
    if not isinstance(table, dict) or table.get("schema") != SCHEMA or not isinstance(table.get("pairs"), list):
        raise UpgradeTableError(f"{path}: not an upgrade table (schema {SCHEMA}, written by "
                                "python -m pcap corpus upgrade-table)")
    return table


def render_upgrade_section(table: dict) -> Markup:
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.ChainableUndefined)
    return Markup(environment.from_string(_TEMPLATE).render(table=table))
