"""The broker kinds of the interop matrix that run as local processes.

    refbroker-process   the project's reference broker (python -m refbroker), so it can be restarted
    mosquitto-process   Debian's mosquitto with TCP, WebSocket and two TLS listeners
    amqtt               amqtt's broker (PyPI `amqtt`, MQTT 3.1.1), started with its `amqtt -c` command
    mqttools            mqttools' broker (PyPI `mqttools`, MQTT 5.0 only), started with `mqttools broker`;
                        a conformance target only (not in the matrix: it offers Maximum QoS 0 only)
    aedes               aedes (npm), started by interop/brokers/aedes/server.mjs
    rabbitmq            RabbitMQ's MQTT and Web MQTT plugins (Debian's rabbitmq-server), a private node
    ejabberd            ejabberd's mod_mqtt (Debian's ejabberd), a private node

Each writes its config into the target's temporary directory from the ports the base class chose.
The `--broker` texts (`amqtt:`, `mqttools:`, `aedes:`, `rabbitmq:`, `ejabberd:`) are registered as entry points in
pyproject.toml, so `pytest --pyargs conformance --broker=aedes:` runs the conformance suite against them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from conformance.targets import find_mosquitto, free_port

from .base import Capabilities, ProcessBrokerTarget

HERE = Path(__file__).resolve().parent


def _mosquitto_style_listeners(target: ProcessBrokerTarget) -> list[str]:
    """Listener lines in mosquitto's config format (refbroker reads the same format)."""
    lines = [f"listener {target.port} {target.host}", "allow_anonymous true"]
    if target.ws_port:
        lines += [f"listener {target.ws_port} {target.host}", "protocol websockets"]
    tls = target.tls_files
    if target.tls_port and tls:
        lines += [f"listener {target.tls_port} {target.host}", f"certfile {tls.server_cert}",
                  f"keyfile {tls.server_key}"]
    if target.mtls_port and tls:
        lines += [f"listener {target.mtls_port} {target.host}", f"certfile {tls.server_cert}",
                  f"keyfile {tls.server_key}", f"cafile {tls.ca}", "require_certificate true"]
    return lines


class RefbrokerProcess(ProcessBrokerTarget):
    name = "refbroker"
    profile_name = "refbroker"

    def command(self) -> list[str]:
        config = self.write("refbroker.conf", "\n".join(["per_listener_settings false",
                                                         *_mosquitto_style_listeners(self), ""]))
        return [sys.executable, "-m", "refbroker", "-c", config, "-v"]

    @property
    def version_string(self) -> str:
        try:
            import refbroker
            return f"refbroker {refbroker.__version__}"
        except (ImportError, AttributeError):
            return "refbroker"


class MosquittoProcess(ProcessBrokerTarget):
    name = "mosquitto"
    profile_name = "mosquitto"

    def __init__(self, binary: str | None = None):
        super().__init__()
        self.binary = binary or find_mosquitto()

    def unavailable(self) -> str | None:
        return None if self.binary else "mosquitto is not installed: apt-get install mosquitto"

    def command(self) -> list[str]:
        config = self.write("mosquitto.conf", "\n".join([
            "per_listener_settings false", *_mosquitto_style_listeners(self),
            "log_dest stdout", "log_type all", "persistence false", ""]))
        return [self.binary, "-c", config]

    @property
    def version_string(self) -> str:
        if not self.binary:
            return "mosquitto (not installed)"
        out = subprocess.run([self.binary, "-h"], capture_output=True, text=True, check=False).stdout
        words = out.split()
        return f"mosquitto {words[2]}" if len(words) > 2 and words[1] == "version" else "mosquitto"


class _PyPIBroker(ProcessBrokerTarget):
    """A broker from PyPI, started by the console script its package installs (beside this Python first)."""

    package = ""  # the distribution's name, which is also its script's

    def script(self) -> str | None:
        return shutil.which(self.package, path=os.path.dirname(sys.executable)) or shutil.which(self.package)

    def unavailable(self) -> str | None:
        if self.script():
            return None
        return f"{self.package} is not installed: pip install 'mqtt-conformance-toolkit[interop]'"

    @property
    def version_string(self) -> str:
        from importlib.metadata import PackageNotFoundError, version
        try:
            return f"{self.package} {version(self.package)}"
        except PackageNotFoundError:
            return f"{self.package} (not installed)"


class AmqttBroker(_PyPIBroker):
    """amqtt's broker. It speaks MQTT 3.1.1 only; its TLS listener can ask for a client certificate."""

    name = "amqtt"
    package = "amqtt"
    profile_name = "amqtt"
    capabilities = Capabilities(versions=("3.1.1",), client_certificate=False)

    def command(self) -> list[str]:
        listeners = {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}}
        if self.ws_port:
            listeners["ws"] = {"type": "ws", "bind": f"{self.host}:{self.ws_port}"}
        if self.tls_port and self.tls_files:
            listeners["tls"] = {"type": "tcp", "bind": f"{self.host}:{self.tls_port}", "ssl": True,
                                "certfile": self.tls_files.server_cert, "keyfile": self.tls_files.server_key}
        config = {"listeners": listeners, "plugins": {
            "amqtt.plugins.logging_amqtt.EventLoggerPlugin": {},
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}}
        path = self.write("amqtt.yaml", json.dumps(config, indent=2))  # JSON is YAML
        return [self.script(), "-c", path]


class MqttoolsBroker(_PyPIBroker):
    """mqttools' broker (PyPI `mqttools`): a small MQTT 5.0-only broker, one nobody here wrote. It announces
    Maximum QoS 0 and no wildcard or shared subscriptions, and does not answer a 3.1.1 CONNECT at all."""

    name = "mqttools"
    package = "mqttools"
    profile_name = "mqttools"
    capabilities = Capabilities(versions=("5.0",), websocket=False, tls=False, client_certificate=False)

    def command(self) -> list[str]:
        # its TLS listener has no certificate without --certfile; a free port keeps it off 8883
        return [self.script(), "broker", "--host", self.host, "--port", str(self.port),
                "--secure-port", str(free_port(self.host))]


class AedesBroker(ProcessBrokerTarget):
    """aedes on Node.js; MQTT 3.1.1 (aedes has no MQTT 5)."""

    name = "aedes"
    profile_name = "aedes"
    capabilities = Capabilities(versions=("3.1.1",))
    directory = HERE / "aedes"

    def unavailable(self) -> str | None:
        if not shutil.which("node"):
            return "Node.js is not installed: apt-get install nodejs npm"
        if not (self.directory / "node_modules" / "aedes").is_dir():
            return f"aedes is not installed: npm ci --prefix {self.directory}"
        return None

    def command(self) -> list[str]:
        command = ["node", str(self.directory / "server.mjs"), "--port", str(self.port)]
        if self.ws_port:
            command += ["--ws-port", str(self.ws_port)]
        if self.tls_port and self.tls_files:
            command += ["--tls-port", str(self.tls_port), "--cert", self.tls_files.server_cert,
                        "--key", self.tls_files.server_key]
        if self.mtls_port and self.tls_files:
            command += ["--mtls-port", str(self.mtls_port), "--ca", self.tls_files.ca]
        return command

    @property
    def version_string(self) -> str:
        try:
            package = json.loads((self.directory / "node_modules" / "aedes" / "package.json").read_text())
            return f"aedes {package['version']}"
        except OSError:
            return "aedes (not installed)"


class RabbitMQBroker(ProcessBrokerTarget):
    """A private RabbitMQ node with the MQTT and Web MQTT plugins (no AMQP listener).

    RabbitMQ 3.10 (Debian 12) speaks MQTT 3.1 and 3.1.1; MQTT 5 arrived in RabbitMQ 3.13. Its Erlang
    port mapper (epmd) runs on a port of our own and is stopped with the node.
    """

    name = "rabbitmq"
    profile_name = "rabbitmq"
    capabilities = Capabilities(versions=("3.1.1",), client_certificate=False)
    binary = "/usr/lib/rabbitmq/bin/rabbitmq-server"
    start_timeout = 90.0

    def __init__(self) -> None:
        super().__init__()
        self.epmd_port: int | None = None

    def unavailable(self) -> str | None:
        if not os.access(self.binary, os.X_OK):
            return "RabbitMQ is not installed: apt-get install rabbitmq-server"
        return None

    def environment(self) -> dict[str, str]:
        if self.epmd_port is None:
            self.epmd_port = free_port(self.host)
            self.dist_port = free_port(self.host)
        work = self.workdir
        env = dict(os.environ)
        env.update({
            "HOME": work, "RABBITMQ_NODENAME": f"interop{self.port}@localhost",
            "RABBITMQ_CONFIG_FILE": f"{work}/rabbitmq.conf", "RABBITMQ_ENABLED_PLUGINS_FILE": f"{work}/enabled_plugins",
            "RABBITMQ_MNESIA_BASE": f"{work}/mnesia", "RABBITMQ_LOG_BASE": f"{work}/log", "RABBITMQ_LOGS": "-",
            "RABBITMQ_PID_FILE": f"{work}/rabbitmq.pid", "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port), "RABBITMQ_NODE_PORT": str(free_port(self.host)),
        })
        return env

    def command(self) -> list[str]:
        lines = ["listeners.tcp = none", f"mqtt.listeners.tcp.default = {self.host}:{self.port}",
                 "mqtt.allow_anonymous = true", "loopback_users = none", "log.console.level = info"]
        if self.ws_port:
            # /mqtt like every other target (the plugin's default path is /ws)
            lines += [f"web_mqtt.tcp.port = {self.ws_port}", f"web_mqtt.tcp.ip = {self.host}", "web_mqtt.ws_path = /mqtt"]
        tls = self.tls_files
        if self.tls_port and tls:
            lines += [f"mqtt.listeners.ssl.default = {self.host}:{self.tls_port}",
                      f"ssl_options.cacertfile = {tls.ca}", f"ssl_options.certfile = {tls.server_cert}",
                      f"ssl_options.keyfile = {tls.server_key}", "ssl_options.verify = verify_none",
                      "ssl_options.fail_if_no_peer_cert = false"]
        self.write("rabbitmq.conf", "\n".join(lines) + "\n")
        self.write("enabled_plugins", "[rabbitmq_mqtt,rabbitmq_web_mqtt].\n")
        return [self.binary]

    def after_stop(self) -> None:
        _stop_epmd(self.epmd_port)

    @property
    def version_string(self) -> str:
        version = _debian_version("rabbitmq-server")
        return f"RabbitMQ {version}" if version else "RabbitMQ (not installed)"


class EjabberdBroker(ProcessBrokerTarget):
    """A private ejabberd node with mod_mqtt (MQTT 3.1.1 and 5.0) on TCP, TLS and WebSocket (/mqtt).

    ejabberd has no anonymous MQTT client: a client logs in with a username, and with anonymous
    authentication (login_anon) any username and password is accepted; the matrix sends interop/interop.
    Debian's ejabberdctl runs the node as the user `ejabberd`, so the work directories are world-writable.
    """

    name = "ejabberd"
    profile_name = "ejabberd"
    capabilities = Capabilities(client_certificate=False, credentials=("interop", "interop"))
    start_timeout = 60.0

    def __init__(self) -> None:
        super().__init__()
        self.epmd_port: int | None = None

    def unavailable(self) -> str | None:
        if not shutil.which("ejabberdctl", path="/usr/sbin:" + os.environ.get("PATH", "")):
            return "ejabberd is not installed: apt-get install ejabberd"
        return None

    def environment(self) -> dict[str, str]:
        if self.epmd_port is None:
            self.epmd_port = free_port(self.host)
        return dict(os.environ, ERL_EPMD_PORT=str(self.epmd_port))

    def command(self) -> list[str]:
        work = Path(self.workdir)
        for sub in ("spool", "logs"):
            (work / sub).mkdir(exist_ok=True)
            os.chmod(work / sub, 0o777)
        listen = [{"port": self.port, "ip": self.host, "module": "mod_mqtt"}]
        if self.ws_port:
            listen.append({"port": self.ws_port, "ip": self.host, "module": "ejabberd_http",
                           "request_handlers": {"/mqtt": "mod_mqtt"}})
        config = {"hosts": ["localhost"], "loglevel": "info", "auth_method": ["anonymous"],
                  "anonymous_protocol": "login_anon", "listen": listen,
                  "modules": {"mod_mqtt": {"access_publish": {"#": [{"allow": "all"}]},
                                           "access_subscribe": {"#": [{"allow": "all"}]}}}}
        if self.tls_port and self.tls_files:
            listen.append({"port": self.tls_port, "ip": self.host, "module": "mod_mqtt", "tls": True})
            # one PEM file with the certificate and its key
            pem = Path(self.tls_files.server_cert).read_text() + Path(self.tls_files.server_key).read_text()
            # not the CA: Erlang's certificate store reports trustme's CA (valid until the year 3000) as expired
            config["certfiles"] = [self.write("server-with-key.pem", pem)]
        path = self.write("ejabberd.yml", json.dumps(config, indent=2))  # JSON is YAML
        ctl = self.write("ejabberdctl.cfg", f"ERLANG_NODE=interop{self.port}@localhost\n")
        node = f"interop{self.port}@localhost"
        return ["runuser", "-u", "ejabberd", "--", "ejabberdctl", "--config", path, "--ctl-config", ctl,
                "--logs", str(work / "logs"), "--spool", str(work / "spool"), "--node", node, "foreground"]

    def logs(self) -> str:
        text = super().logs()
        if self.workdir and (Path(self.workdir) / "logs" / "ejabberd.log").exists():
            text += (Path(self.workdir) / "logs" / "ejabberd.log").read_text(encoding="utf-8", errors="replace")
        return text

    def after_stop(self) -> None:
        _stop_epmd(self.epmd_port)

    @property
    def version_string(self) -> str:
        version = _debian_version("ejabberd")
        return f"ejabberd {version}" if version else "ejabberd (not installed)"


def _debian_version(package: str) -> str:
    """The upstream part of the installed Debian package's version ("" when it is not installed)."""
    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True,
                         check=False).stdout.strip()
    return out.split("-")[0]


def _stop_epmd(port: int | None, timeout: float = 15.0) -> None:
    """Stop the Erlang port mapper a node of ours started on `port`: `epmd -kill` refuses while a node is
    still registered (the VM may outlive its launcher by a moment), so it is asked again until it exits."""
    if not port:
        return
    env = dict(os.environ, ERL_EPMD_PORT=str(port))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = subprocess.run(["epmd", "-port", str(port), "-kill"], env=env, capture_output=True, text=True,
                                timeout=10, check=False)
        if "not allowed" not in result.stdout + result.stderr:
            return  # killed, or no epmd there
        time.sleep(0.2)


def _kind(cls):
    def build(text: str):
        kind, _, argument = text.partition(":")
        if argument:
            raise ValueError(f"--broker={kind}: takes no argument (got {argument!r})")
        return cls()
    build.__doc__ = f"--broker={cls.name}: {cls.__doc__ or ''}"
    return build


amqtt_from_option = _kind(AmqttBroker)
aedes_from_option = _kind(AedesBroker)
rabbitmq_from_option = _kind(RabbitMQBroker)
ejabberd_from_option = _kind(EjabberdBroker)
mqttools_from_option = _kind(MqttoolsBroker)
