"""conformance: a broker-agnostic MQTT 3.1.1 / 5.0 conformance suite, usable as a pytest plugin.

catalogue/ holds the normative statements the tests are tagged with.
"""
