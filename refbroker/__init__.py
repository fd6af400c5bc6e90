"""refbroker: a deliberately readable MQTT 3.1 / 3.1.1 / 5.0 reference broker.

protocol/ holds the wire format (sans-IO); the broker core, servers, configuration and command line
are built on top of it.
"""

__version__ = "0.1.0"
