"""The client libraries of the interop matrix, each behind a driver process speaking the line protocol
(interop/clients/driver.py):

    paho-mqtt    Python, paho-mqtt (3.1.1 and 5.0)             python -m interop.clients.python_driver paho-mqtt
    gmqtt        Python, gmqtt (3.1.1 and 5.0)                 ... gmqtt
    aiomqtt      Python, aiomqtt (3.1.1 and 5.0)               ... aiomqtt
    amqtt        Python, amqtt's client (3.1.1)                ... amqtt
    mqtt.js      Node.js, MQTT.js (3.1.1 and 5.0)              node interop/clients/node/driver.mjs
    fusesource   Java, FuseSource MQTT client (3.1.1)          java -cp ... interop/clients/java/Driver.java
    mosquitto-cli  mosquitto_pub / mosquitto_sub (3.1.1 and 5.0) python -m interop.clients.mosquitto_cli
    mosquitto-cli-2.0.11 / -2.0.21 / -2.1.2   the same tools of each mosquitto image   ... --image TAG

Library versions are pinned (pyproject's interop extra, interop/clients/node/package-lock.json, the
Debian package of the Java library) and reported by each driver's `hello`.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ClientSpec:
    name: str
    versions: tuple[str, ...]
    argv: tuple[str, ...]
    #: None, or a callable returning why the client cannot run here and how to get it
    check: object = None
    cwd: str | None = None
    env: dict = field(default_factory=dict)

    def command(self) -> list[str]:
        return list(self.argv)

    def environment(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def unavailable(self) -> str | None:
        return self.check() if callable(self.check) else None


def _python_module(module: str, package: str):
    def check():
        return None if find_spec(module) else f"{package} is not installed: pip install 'mqtt-conformance-toolkit[interop]'"
    return check


def _node_check():
    if not shutil.which("node"):
        return "Node.js is not installed: apt-get install nodejs npm"
    if not (HERE / "node" / "node_modules" / "mqtt").is_dir():
        return f"MQTT.js is not installed: npm ci --prefix {HERE / 'node'}"
    return None


JAVA_CLASSPATH = ":".join(f"/usr/share/java/{jar}.jar" for jar in ("mqtt-client", "hawtdispatch-transport",
                                                                    "hawtdispatch", "hawtbuf"))


def _java_check():
    if not shutil.which("java"):
        return "Java is not installed: apt-get install default-jre-headless"
    if not Path("/usr/share/java/mqtt-client.jar").exists():
        return "the FuseSource MQTT client is not installed: apt-get install libmqtt-client-java"
    return None


def _cli_check():
    missing = [tool for tool in ("mosquitto_pub", "mosquitto_sub") if not shutil.which(tool)]
    return f"{' and '.join(missing)} not installed: apt-get install mosquitto-clients" if missing else None


def _image_cli_check(version: str):
    def check():
        # The tools are copied out of the image by the driver (docker export): the engine must run, so
        # asking starts it (as root) and it stays up until this process ends (docker_engine.py).
        from ..docker_engine import DockerUnavailable, shared_engine
        from ..images import LABEL_CLIENTS, find_image, spec_for
        tag = spec_for(version).tag
        try:
            image = find_image(shared_engine(), tag)
        except DockerUnavailable as exc:
            return f"no Docker engine for image {tag}: {exc}"
        if image is None:
            return f"image {tag} is not built: python -m interop images build {version}"
        if (image.labels or {}).get(LABEL_CLIENTS) != "yes":
            return f"image {tag} has no mosquitto-clients: python -m interop images build {version} --force"
        return None
    return check


def _image_cli(version: str) -> ClientSpec:
    from ..images import spec_for
    return ClientSpec(f"mosquitto-cli-{version}", ("3.1.1", "5.0"),
                      (sys.executable, "-m", "interop.clients.mosquitto_cli", "--image", spec_for(version).tag),
                      _image_cli_check(version))


def _python(library: str) -> tuple[str, ...]:
    return (sys.executable, "-m", "interop.clients.python_driver", library)


CLIENTS: dict[str, ClientSpec] = {spec.name: spec for spec in (
    ClientSpec("paho-mqtt", ("3.1.1", "5.0"), _python("paho-mqtt"), _python_module("paho.mqtt", "paho-mqtt")),
    ClientSpec("gmqtt", ("3.1.1", "5.0"), _python("gmqtt"), _python_module("gmqtt", "gmqtt")),
    ClientSpec("aiomqtt", ("3.1.1", "5.0"), _python("aiomqtt"), _python_module("aiomqtt", "aiomqtt")),
    ClientSpec("amqtt", ("3.1.1",), _python("amqtt"), _python_module("amqtt", "amqtt")),
    ClientSpec("mqtt.js", ("3.1.1", "5.0"), ("node", str(HERE / "node" / "driver.mjs")), _node_check),
    ClientSpec("fusesource-java", ("3.1.1",), ("java", "-XX:TieredStopAtLevel=1", "-Xshare:auto", "-cp",
                                               JAVA_CLASSPATH, str(HERE / "java" / "Driver.java")), _java_check),
    ClientSpec("mosquitto-cli", ("3.1.1", "5.0"), (sys.executable, "-m", "interop.clients.mosquitto_cli"),
               _cli_check),
    _image_cli("2.0.11"), _image_cli("2.0.21"), _image_cli("2.1.2"),
)}


def client_spec(name: str) -> ClientSpec:
    try:
        return CLIENTS[name]
    except KeyError:
        raise ValueError(f"unknown client {name!r}; known: {', '.join(CLIENTS)}") from None
