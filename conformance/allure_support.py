"""allure-pytest labels for the conformance suite (active only with allure-pytest and `--alluredir`).

    pytest --pyargs conformance --broker=mosquitto --alluredir results/allure

Every conformance test's allure result then carries:

* epic    "MQTT 3.1.1" or "MQTT 5.0" (the protocol version of this run of the test);
* feature the packet or area of each statement the test checks (the catalogue's `packet` column,
          e.g. "CONNECT", "PUBLISH", "Topic names and filters");
* story   each statement id ("MQTT-3.1.2-24");
* parameters "broker" (the target's version string, e.g. "mosquitto 2.0.11") and "MQTT version";
  both take part in allure's history id, so runs of one test against two brokers stay two results;
* a tag "known deviation #N" when the outcome is a known deviation of the target;
* attachments: the packet trace of the test's clients (text), and the statements' summaries in the
  description.

The plugin registers this module's `AllureConformance` from its `pytest_configure` through
`maybe_register(config)`; nothing here imports allure unless both conditions hold, so the suite runs
the same without allure-pytest.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from .items import CLIENTS_KEY, is_recorded, item_version, record_of, statement_ids, traces_of
from .outcomes import current_target

__all__ = ["AllureConformance", "format_trace", "maybe_register"]

PLUGIN_NAME = "mqtt_conformance_allure"


def maybe_register(config: pytest.Config) -> bool:
    """Register the allure labelling plugin when allure-pytest is installed and `--alluredir` is given."""
    if importlib.util.find_spec("allure") is None or importlib.util.find_spec("allure_pytest") is None:
        return False
    try:
        alluredir = config.getoption("--alluredir", default=None)
    except ValueError:  # allure-pytest installed but disabled (-p no:allure_pytest)
        return False
    if not alluredir or config.pluginmanager.has_plugin(PLUGIN_NAME):
        return False
    config.pluginmanager.register(AllureConformance(config), PLUGIN_NAME)
    return True


def format_trace(traces: list[dict[str, Any]]) -> str:
    """The packet traces of a test's clients as readable text, one line per packet in time order.

    `traces` is the results file's shape: [{"client", "client_id", "packets": [{t, elapsed, dir, type,
    summary, hex}]}]. "->" is client to broker, "<-" broker to client, "--" an event or note.
    """
    rows = []
    for trace in traces:
        for packet in trace.get("packets") or []:
            rows.append((packet.get("t") or 0.0, trace.get("client") or "?", packet))
    if not rows:
        return "no packets were exchanged (the test used no client, or none could connect)"
    rows.sort(key=lambda row: row[0])
    start = rows[0][0]
    width = max(len(client) for _, client, _ in rows)
    arrows = {"out": "->", "in": "<-"}
    lines = []
    for t, client, packet in rows:
        arrow = arrows.get(packet.get("dir"), "--")
        lines.append(f"{t - start:9.4f}s  {client:<{width}}  {arrow}  {packet.get('type', '')}  "
                     f"{packet.get('summary', '')}")
        if packet.get("hex"):
            truncated = f" ... ({packet['hex_truncated']} bytes in all)" if packet.get("hex_truncated") else ""
            lines.append(f"{'':{12 + width + 6}}{packet['hex']}{truncated}")
    return "\n".join(lines) + "\n"


class AllureConformance:
    """Hooks that label conformance tests for allure and attach their packet traces."""

    def __init__(self, config: pytest.Config):
        self.config = config

    # Which items are conformance tests and what they check: the plugin's own bookkeeping.
    @staticmethod
    def _suite_info(item: pytest.Item) -> tuple[str | None, list[str]] | None:
        if not is_recorded(item):
            return None
        return item_version(item), statement_ids(item)

    @staticmethod
    def _broker_name() -> str:
        """The broker's name and version ("mosquitto 2.0.11"); its target name when it tells neither."""
        target = current_target()
        if target is None:
            return "unknown"
        version_string = target.version_string
        return str(version_string) if version_string and version_string != "unknown" else target.display_name()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item):
        yield
        # After setup: the broker fixture has started the target, so its version string is known. The
        # parameters must be in place before allure computes the history id (in its teardown hook).
        info = self._suite_info(item)
        if info is None:
            return
        import allure

        from .catalogue import load_catalogue

        version, statements = info
        catalogue = load_catalogue()
        allure.dynamic.parameter("broker", self._broker_name())
        if version is not None:
            allure.dynamic.parameter("MQTT version", version)
            allure.dynamic.epic(f"MQTT {version}")
        features: list[str] = []
        described = []
        for statement_id in statements:
            statement = catalogue.get((version, statement_id)) if version else None
            feature = statement.packet if statement is not None and statement.packet else "other"
            if feature not in features:
                features.append(feature)
            if statement is not None:
                described.append(f"- **{statement_id}** (section {statement.section}, {statement.packet}): "
                                 f"{statement.summary}")
            else:
                described.append(f"- **{statement_id}**")
        if features:
            allure.dynamic.feature(*features)
        if statements:
            allure.dynamic.story(*statements)
        doc = (getattr(getattr(item, "function", None), "__doc__", None) or "").strip()
        text = doc
        if described:
            text = (doc + "\n\n" if doc else "") + "Statements checked:\n\n" + "\n".join(described)
        if text:
            allure.dynamic.description(text)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item):
        yield
        # After teardown: the clients are closed, so their traces are complete.
        if self._suite_info(item) is None:
            return
        import allure

        allure.attach(format_trace(traces_of(item.stash.get(CLIENTS_KEY, []))), name="packet trace",
                      attachment_type=allure.attachment_type.TEXT)
        number = record_of(item).get("known_deviation")
        if number is not None:
            from .deviations import DEVIATIONS

            allure.dynamic.tag(f"known deviation #{number}")
            deviation = DEVIATIONS.get(number)
            if deviation is not None:
                allure.attach(f"known deviation #{number} of {deviation.broker} {deviation.versions_text}\n"
                              f"{deviation.title}\nreference: {deviation.reference}\n"
                              + (f"\n{deviation.evidence}\n" if deviation.evidence else ""),
                              name=f"known deviation #{number}", attachment_type=allure.attachment_type.TEXT)
