"""mosquitto_sub / mosquitto_pub behind the line protocol: `python -m interop.clients.mosquitto_cli [PREFIX...]`.

A connection is a running `mosquitto_sub` (subscribed to the connection's topics, or to a private topic
when it has none yet): its Will, session options and subscriptions are command-line options, its messages
come from `-F %j` lines, its SUBACK from `-d`. A new subscription restarts it with one more `-t` (a
clean DISCONNECT and a new CONNECT; with a persistent session the session carries over). Every `publish`
is one `mosquitto_pub` run (its own short connection). What the tools cannot express is refused with
"unsupported: ..." (the cell is then not applicable): different QoS per topic of one connection,
overlapping subscriptions with different identifiers, a Topic Alias on a later message, WebSocket.

`--image IMAGE` runs the mosquitto_pub / mosquitto_sub of a mosquitto image (interop/images.py builds
them with mosquitto-clients) as local processes: the tools and the image's shared libraries are copied
out of the image once (`docker export`, cached by image id under the temporary directory) and started
with the image's own dynamic loader, so each tool is an ordinary child process (fast to start, killed
like any other) running exactly the release the image ships.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import shutil
import tempfile
from pathlib import Path
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid

TOOLS_PREFIX: list[str] = []  # the image's dynamic loader and library path in --image mode
TOOLS_DIR = ""  # where the image's tools are in --image mode ("" = on PATH)
MULTIARCH = "x86_64-linux-gnu"


def tool(name: str) -> list[str]:
    return [*TOOLS_PREFIX, f"{TOOLS_DIR}/usr/bin/{name}" if TOOLS_DIR else name]


def extract_tools(image: str) -> str:
    """The image's mosquitto_pub/sub and libraries in a local directory (made once per image id)."""
    inspect = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", image], capture_output=True,
                             text=True, timeout=60)
    if inspect.returncode != 0:
        raise SystemExit(f"image {image} not found: {inspect.stderr.strip()}")
    image_id = inspect.stdout.strip().split(":")[-1][:16]
    root = Path(tempfile.gettempdir()) / f"mqtt-toolkit-tools-{image_id}"
    if (root / ".complete").exists():
        return str(root)
    with open(f"{root}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (root / ".complete").exists():
            return str(root)
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        container = subprocess.run(["docker", "create", image, "true"], capture_output=True, text=True,
                                   timeout=120, check=True).stdout.strip()
        try:
            export = subprocess.Popen(["docker", "export", container], stdout=subprocess.PIPE)
            subprocess.run(["tar", "-x", "-C", str(root), "--wildcards", "usr/bin/mosquitto_*",
                            f"usr/lib/{MULTIARCH}/*"], stdin=export.stdout, capture_output=True, timeout=300)
            export.wait(timeout=300)
        finally:
            subprocess.run(["docker", "rm", "-f", container], capture_output=True, timeout=120)
        if not (root / "usr/bin/mosquitto_sub").exists():
            shutil.rmtree(root, ignore_errors=True)
            raise SystemExit(f"image {image} has no mosquitto_sub: python -m interop images build VERSION --force")
        (root / ".complete").touch()
    return str(root)


def use_image_tools(root: str) -> None:
    libraries = f"{root}/usr/lib/{MULTIARCH}"
    TOOLS_PREFIX[:] = [f"{libraries}/ld-linux-x86-64.so.2", "--library-path", libraries]
    globals()["TOOLS_DIR"] = root


class Connection:
    def __init__(self, options: dict):
        self.options = options
        self.topics: list[tuple[str, int, int | None]] = []  # (filter, qos, subscription identifier)
        self.process: subprocess.Popen | None = None
        self.inbox: queue.Queue = queue.Queue()
        self.subacks: queue.Queue = queue.Queue()
        self.connacks: queue.Queue = queue.Queue()



def _common(options: dict) -> list[str]:
    args = ["-h", options["host"], "-p", str(options["port"]), "-V", "5" if options.get("version") == "5.0" else "311",
            "-k", str(options.get("keepalive", 30))]
    if options.get("username") is not None:
        args += ["-u", options["username"], "-P", options.get("password") or ""]
    if options.get("transport") == "tls":
        args += ["--cafile", options["ca"]]
        if options.get("cert"):
            args += ["--cert", options["cert"], "--key", options["key"]]
    return args


def _properties(command: str, properties: dict | None) -> list[str]:
    names = {"message_expiry": "message-expiry-interval", "topic_alias": "topic-alias",
             "response_topic": "response-topic", "correlation_data": "correlation-data",
             "payload_format": "payload-format-indicator", "content_type": "content-type"}
    args = []
    for key, value in (properties or {}).items():
        if key == "user_properties":
            for name, text in value:
                args += ["-D", command, "user-property", name, text]
        else:
            args += ["-D", command, names[key], str(value)]
    return args


class _Pairs(dict):
    """A JSON object that also keeps its members in order, repeated names included (%j writes a User
    Property name once per value)."""

    def __init__(self, pairs):
        super().__init__(pairs)
        self.pairs = pairs


def _message(line: str, v5: bool) -> dict:
    data = json.loads(line, object_pairs_hook=_Pairs)
    props = data.get("properties") or {}
    result = {}
    if "user-properties" in props:
        found = props["user-properties"]
        # 2.0: one object, a name once per value; 2.1: a list of one-member objects
        pairs = found.pairs if isinstance(found, _Pairs) else [pair for item in found for pair in item.pairs]
        result["user_properties"] = [[k, v] for k, values in pairs
                                     for v in (values if isinstance(values, list) else [values])]
    for wire, name in (("content-type", "content_type"), ("correlation-data", "correlation_data"),
                       ("response-topic", "response_topic"), ("payload-format-indicator", "payload_format"),
                       ("message-expiry-interval", "message_expiry"), ("topic-alias", "topic_alias")):
        if wire in props:
            result[name] = props[wire]
    if "subscription-identifier" in props:
        value = props["subscription-identifier"]
        result["subscription_identifier"] = value if isinstance(value, list) else [value]
    return {"topic": data["topic"], "payload": data.get("payload", ""), "qos": data.get("qos"),
            "retain": bool(data.get("retain")), "properties": result if v5 else {}}


class Driver:
    def __init__(self) -> None:
        self.connections: dict[str, Connection] = {}

    def op_hello(self):
        out = subprocess.run(tool("mosquitto_sub") + ["--help"], capture_output=True, text=True, timeout=60).stdout
        match = re.search(r"version (\S+)", out)
        features = ["3.1.1", "5.0", "tls", "client_certificate", "will", "will_delay", "session_expiry",
                    "user_properties", "message_expiry", "subscription_identifier", "response_topic",
                    "correlation_data", "payload_format", "content_type", "receive_maximum", "maximum_packet_size"]
        library = "mosquitto_pub/sub" + (" (docker image)" if TOOLS_DIR else "")
        return {"library": library, "version": match.group(1) if match else "unknown", "features": features}

    # ---------------------------------------------------------------- the mosquitto_sub process

    def _start(self, connection: Connection, timeout: float) -> None:
        o = connection.options
        args = tool("mosquitto_sub") + _common(o) + ["-i", o["client_id"], "-d", "-F", "@@MSG %j"]
        if not o.get("clean", True):
            args += ["-c"]
        if o.get("session_expiry") is not None:
            args += ["-x", str(o["session_expiry"])]
        will = o.get("will")
        if will:
            args += ["--will-topic", will["topic"], "--will-payload", will.get("payload", ""),
                     "--will-qos", str(will.get("qos", 0))]
            if will.get("retain"):
                args += ["--will-retain"]
            if will.get("delay"):
                args += ["-D", "will", "will-delay-interval", str(will["delay"])]
        for name, key in (("receive-maximum", "receive_maximum"), ("maximum-packet-size", "maximum_packet_size")):
            if o.get(key) is not None:
                args += ["-D", "connect", name, str(o[key])]
        topics = connection.topics or [(f"interop-cli-idle/{o['client_id']}", 0, None)]
        qos_values = {qos for _, qos, _ in topics}
        identifiers = {ident for _, _, ident in topics if ident}
        if len(identifiers) > 1:
            raise RuntimeError("unsupported: mosquitto_sub gives all its subscriptions one Subscription Identifier")
        if identifiers:
            args += ["-D", "subscribe", "subscription-identifier", str(identifiers.pop())]
        args += ["-q", str(max(qos_values))]
        for topic, _, _ in topics:
            args += ["-t", topic]
        # a pseudo-terminal: on a pipe mosquitto_sub block-buffers its debug lines (CONNACK, SUBACK)
        master, slave = pty.openpty()
        try:
            process = subprocess.Popen(args, stdout=slave, stderr=slave, stdin=subprocess.DEVNULL)
        finally:
            os.close(slave)
        connection.process = process

        # fresh queues per process: what an old process says about its own connection must not count
        connection.connacks, connection.subacks = queue.Queue(), queue.Queue()
        threading.Thread(target=self._read, args=(connection, master, o.get("version") == "5.0",
                                                  connection.connacks, connection.subacks), daemon=True).start()
        deadline = time.monotonic() + timeout
        for waiting in (connection.connacks, connection.subacks):
            try:
                answer = waiting.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                self._stop(connection, kill=True)
                raise TimeoutError("mosquitto_sub did not report the CONNACK and SUBACK in time") from None
            if isinstance(answer, str):
                self._stop(connection, kill=True)
                raise ConnectionError(answer)

    @staticmethod
    def _lines(master: int):
        buffer = b""
        try:
            while True:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the tool exited and closed the terminal
                    break
                if not data:
                    break
                buffer += data
                *complete, buffer = buffer.split(b"\n")
                for raw in complete:
                    yield raw.rstrip(b"\r").decode("utf-8", errors="replace")
        finally:
            os.close(master)

    @classmethod
    def _read(cls, connection: Connection, master: int, v5: bool, connacks: queue.Queue,
              subacks: queue.Queue) -> None:
        for line in cls._lines(master):
            if line.startswith("@MSG "):
                try:
                    connection.inbox.put(_message(line[5:], v5))
                except (ValueError, KeyError, TypeError, AttributeError):
                    # a line this driver cannot read: reported as received, with the raw line, not dropped
                    connection.inbox.put({"topic": "", "payload": line[5:], "qos": None, "retain": None,
                                          "properties": {}, "unreadable": True})
            elif "received CONNACK" in line:
                code = re.search(r"CONNACK \((\d+)\)", line)
                connacks.put(0 if not code or code.group(1) == "0" else f"CONNACK {code.group(1)}")
            elif line.startswith("Subscribed (mid"):
                subacks.put([int(n) for n in line.rsplit(":", 1)[1].split(",")])
            elif line.startswith(("Connection error", "Error:", "Unable to connect")):
                connacks.put(line)
        connacks.put("mosquitto_sub exited")

    @staticmethod
    def _stop(connection: Connection, kill: bool = False) -> None:
        process, connection.process = connection.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL if kill else signal.SIGINT)  # SIGINT: a clean DISCONNECT
            try:
                process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    # ---------------------------------------------------------------- operations

    def op_connect(self, conn, timeout=10, transport="tcp", **options):
        if transport == "ws":
            raise RuntimeError("unsupported: these mosquitto_pub/sub have no WebSocket transport")
        old = self.connections.get(conn)
        connection = Connection({**options, "transport": transport})
        if old is not None:
            self._stop(old)
            connection.inbox = old.inbox
            if not options.get("clean", True):
                connection.topics = old.topics  # the session keeps them
        self.connections[conn] = connection
        self._start(connection, timeout)
        return {"session_present": None, "reason_code": 0, "properties": {}}

    def _get(self, conn) -> Connection:
        connection = self.connections.get(conn)
        if connection is None or connection.process is None:
            raise RuntimeError(f"no connection {conn!r}")
        return connection

    def op_subscribe(self, conn, topic, qos=0, subscription_identifier=None, timeout=10):
        connection = self._get(conn)
        if connection.topics and {q for _, q, _ in connection.topics} != {qos}:
            raise RuntimeError("unsupported: mosquitto_sub subscribes all its topics at one QoS")
        connection.topics.append((topic, qos, subscription_identifier))
        self._stop(connection)
        self._start(connection, timeout)
        return {"granted": [qos]}  # mosquitto_sub reports the SUBACK of all its topics together

    def op_unsubscribe(self, conn, topic, timeout=10):
        connection = self._get(conn)
        connection.topics = [t for t in connection.topics if t[0] != topic]
        self._stop(connection)
        self._start(connection, timeout)
        return {}

    def op_publish(self, conn, topic, payload="", qos=0, retain=False, properties=None, timeout=10):
        connection = self.connections.get(conn)
        if connection is None:
            raise RuntimeError(f"no connection {conn!r}")
        if not topic:
            raise RuntimeError("unsupported: each mosquitto_pub run is a new connection, so a Topic Alias "
                               "cannot stand for a topic sent earlier")
        o = connection.options
        args = tool("mosquitto_pub") + _common(o) + ["-i", f"{o['client_id'][:15]}p{uuid.uuid4().hex[:6]}",
                                                     "-t", topic, "-q", str(qos)]
        args += ["-m", payload] if payload else ["-n"]  # -n: a zero-length message
        if retain:
            args += ["-r"]
        args += _properties("publish", properties)
        result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"mosquitto_pub exited {result.returncode}: {(result.stderr or result.stdout).strip()}")
        return {}

    def op_receive(self, conn, count=1, timeout=2.0):
        connection = self.connections.get(conn)
        if connection is None:
            raise RuntimeError(f"no connection {conn!r}")
        messages, deadline = [], time.monotonic() + timeout
        while len(messages) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                messages.append(connection.inbox.get(timeout=left))
            except queue.Empty:
                break
        return {"messages": messages}

    def op_status(self, conn):
        connection = self.connections.get(conn)
        return {"connected": bool(connection and connection.process and connection.process.poll() is None)}

    def op_disconnect(self, conn):
        self._stop(self._get(conn))
        return {}

    def op_reset(self):
        for connection in self.connections.values():
            self._stop(connection)
        self.connections.clear()
        return {}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--image"] and len(argv) == 2:
        use_image_tools(extract_tools(argv[1]))
    elif argv:
        print("usage: python -m interop.clients.mosquitto_cli [--image IMAGE]", file=sys.stderr)
        return 2
    return serve(Driver())


def serve(driver: "Driver") -> int:
    for line in sys.stdin:
        try:
            request = json.loads(line)
        except ValueError:
            continue
        request_id, op = request.pop("id", None), request.pop("op", "")
        try:
            answer = {"ok": True, **(getattr(driver, "op_" + op)(**request) or {})}
        except AttributeError as exc:
            answer = {"ok": False, "error": f"unknown operation {op!r}" if not hasattr(driver, "op_" + op) else str(exc)}
        except Exception as exc:  # noqa: BLE001 - a tool's failure is an answer
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        answer["id"] = request_id
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    driver.op_reset()
    return 0


if __name__ == "__main__":
    sys.exit(main())
