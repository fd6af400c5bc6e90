"""The broker targets of the interop matrix, by name.

    refbroker                  the project's reference broker, as a process (restartable)
    mosquitto                  Debian's mosquitto, as a process
    mosquitto-2.0.11 / mosquitto-2.0.21 / mosquitto-2.1.2   mosquitto in locally built Docker images
    amqtt                      amqtt's broker (PyPI)
    aedes                      aedes (npm) with a small server script of ours
    rabbitmq                   RabbitMQ's MQTT plugin (Debian's rabbitmq-server)
    ejabberd                   ejabberd's mod_mqtt (Debian's ejabberd)

`build_target(name)` returns a fresh `InteropTarget`; `BROKERS` lists the names in matrix order.
kinds.MqttoolsBroker (`--broker=mqttools:` for the conformance suite) is not in the matrix: it offers
Maximum QoS 0 only, and the scenarios publish at QoS 1.
"""

from __future__ import annotations

from collections.abc import Callable

from .base import Capabilities, InteropTarget, ProcessBrokerTarget, profile_path
from .docker_mosquitto import DockerMosquittoInterop
from .kinds import (
    AedesBroker,
    AmqttBroker,
    EjabberdBroker,
    MosquittoProcess,
    RabbitMQBroker,
    RefbrokerProcess,
)

BROKERS: dict[str, Callable[[], InteropTarget]] = {
    "refbroker": RefbrokerProcess,
    "mosquitto": MosquittoProcess,
    "mosquitto-2.0.11": lambda: DockerMosquittoInterop("2.0.11"),
    "mosquitto-2.0.21": lambda: DockerMosquittoInterop("2.0.21"),
    "mosquitto-2.1.2": lambda: DockerMosquittoInterop("2.1.2"),
    "amqtt": AmqttBroker,
    "aedes": AedesBroker,
    "rabbitmq": RabbitMQBroker,
    "ejabberd": EjabberdBroker,
}


def build_target(name: str) -> InteropTarget:
    try:
        return BROKERS[name]()
    except KeyError:
        raise ValueError(f"unknown broker target {name!r}; known: {', '.join(BROKERS)}") from None


__all__ = ["BROKERS", "Capabilities", "InteropTarget", "ProcessBrokerTarget", "build_target", "profile_path"]
