"""The conformance suite: server-side normative statements of MQTT 3.1.1 and 5.0, tested black-box.

Run it with `pytest --pyargs conformance.tests --broker=TARGET --mqtt-version=all`.
"""
