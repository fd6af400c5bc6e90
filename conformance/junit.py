"""JUnit XML properties for conformance tests (pytest plugin, entry point `pytest11`).

    pytest --pyargs conformance --broker=HOST:PORT --junitxml=results/junit.xml

With pytest's `--junitxml`, every conformance test case carries `<properties>` that Jenkins and GitLab
show beside it: one `statement` per statement id it checks, `mqtt_version`, `broker` (name and
version, e.g. "mosquitto 2.0.11"), `outcome` as the results file has it (pass, fail, deviation,
not-applicable, error), and for outcomes other than pass the `reason` and, for a documented one, `known_deviation`
("#13: title"). They are the same `user_properties` that pytest's `record_property` fixture writes.
Without --junitxml the properties are collected and ignored, as pytest does with record_property.
"""

from __future__ import annotations

import pytest

__all__ = ["broker_label", "properties_for"]

REASON_LIMIT = 1000


def properties_for(statements: list[tuple[str, str]], version: str | None, broker: str | None,
                   record: dict) -> list[tuple[str, str]]:
    """The (name, value) properties of one finished conformance test."""
    from .deviations import DEVIATIONS

    properties = [("statement", statement_id) for _, statement_id in statements]
    if version:
        properties.append(("mqtt_version", version))
    if broker:
        properties.append(("broker", broker))
    outcome = record.get("outcome", "error")
    properties.append(("outcome", outcome))
    number = record.get("known_deviation")
    if number is not None:
        deviation = DEVIATIONS.get(number)
        properties.append(("known_deviation", f"#{number}: {deviation.title}" if deviation else f"#{number}"))
    reason = str(record.get("reason") or "")
    if outcome != "pass" and reason:
        properties.append(("reason", reason[:REASON_LIMIT]))
    return properties


def broker_label() -> str | None:
    """The broker under test as people name it ("mosquitto 2.0.11"), else its target name."""
    from .outcomes import current_target

    target = current_target()
    if target is None:
        return None
    version_string = target.version_string
    return str(version_string) if version_string and version_string != "unknown" else target.display_name()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    # tryfirst makes this the outermost wrapper: the suite plugin has updated its record when we read it
    outcome = yield
    report = outcome.get_result()
    from .items import is_recorded, item_version, record_of
    from .selection import item_statements

    if not is_recorded(item):
        return
    if report.when == "setup":  # the broker is known now; at the last teardown it may be stopped already
        item.stash[_broker_key] = broker_label()
        return
    if report.when != "teardown":
        return
    report.user_properties.extend(properties_for(item_statements(item), item_version(item),
                                                 item.stash.get(_broker_key, None), record_of(item)))


_broker_key = pytest.StashKey[str | None]()
