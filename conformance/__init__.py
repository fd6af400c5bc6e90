"""conformance: a broker-agnostic MQTT 3.1.1 / 5.0 conformance suite, usable as a pytest plugin.

    pytest --pyargs conformance --broker=mosquitto --mqtt-version=all

catalogue/ holds the normative statements the tests are tagged with; client.py is the raw test
client; targets.py the brokers it runs against; plugin.py the pytest plugin (options, fixtures,
results file); deviations.py the known deviations of real brokers; tests/ the suite itself.
"""

from .checks import check, fail_statement, statement
from .outcomes import known_deviation, not_applicable

__all__ = ["check", "fail_statement", "known_deviation", "not_applicable", "statement"]
