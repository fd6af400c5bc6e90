"""`python -m bench.crash`: how many acknowledged messages a broker loses when it is killed with kill -9.

    python -m bench.crash                          refbroker (autosave), refbroker (durable acks), mosquitto
    python -m bench.crash --kills 20 --interval 2 --json crash.json
    python -m bench.crash --brokers refbroker-durable --kills 3     (the short run of the tests)

For each broker: a subscriber with a persistent session (MQTT 3.1.1, Clean Session 0, QoS 2
subscription) and two publishers (one QoS 1, one QoS 2) run while the broker is killed with SIGKILL
every `--interval` seconds and started again on the same persistence file, `--kills` times. The
subscriber is online for the first half of each interval and offline for the second, so that the
broker holds a queue of messages for it when it is killed (what persistence is for). Each
publisher sends numbered messages one at a time and counts one as *acknowledged* when its PUBACK
(QoS 1) or PUBREC (QoS 2) arrives: from then on the broker has the message [MQTT-4.3.2-2], [MQTT-4.3.3-2].
After the last restart the subscriber collects what is left; a message acknowledged but never
received is *lost*.

Brokers, all with `persistence true`:

    refbroker          autosave_interval --autosave (mosquitto's way: may lose what changed since the last save)
    refbroker-durable  persistence_durable_acks true (saved before every PUBACK/PUBREC: should lose 0)
    mosquitto          the local mosquitto, autosave_interval --autosave

Figures depend on the machine's disk and load: take them on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field

from refbroker.protocol import (
    Connack,
    Connect,
    MQTTError,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    StreamDecoder,
    Subscribe,
    Subscription,
)

BROKERS = ("refbroker", "refbroker-durable", "mosquitto")
TOPIC = "crash/test"


@dataclass
class Outcome:
    broker: str
    kills: int
    acknowledged: int = 0          # PUBACK / PUBREC received by the publishers
    received: int = 0              # distinct messages the subscriber got
    lost: int = 0                  # acknowledged, never received
    unacknowledged_received: int = 0  # received although the publisher saw no acknowledgement (allowed)
    lost_examples: list[str] = field(default_factory=list)


class _Connection:
    """A blocking MQTT 3.1.1 connection that notices a dead broker (returns None / raises OSError)."""

    def __init__(self, port: int, client_id: str, clean: bool, timeout: float = 2.0):
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.decoder = StreamDecoder(4)
        self.pending: list = []
        self.socket.sendall(Connect(client_id=client_id, protocol_level=4, clean_start=clean, keep_alive=30).encode(4))
        connack = self.receive(timeout)
        if not isinstance(connack, Connack) or connack.reason_code != 0:
            self.close()
            raise OSError(f"CONNECT refused or unanswered: {connack!r}")
        self.session_present = connack.session_present

    def send(self, packet) -> None:
        self.socket.sendall(packet.encode(4))

    def receive(self, timeout: float):
        self.socket.settimeout(timeout)
        while not self.pending:
            try:
                data = self.socket.recv(65536)
            except (TimeoutError, socket.timeout):
                return None
            if not data:
                raise OSError("connection closed")
            try:
                self.pending += self.decoder.feed(data)
            except MQTTError as error:
                raise OSError(f"bad data: {error}") from None
        return self.pending.pop(0)

    def close(self) -> None:
        try:
            self.socket.close()
        except OSError:
            pass


def _connect_retrying(port: int, client_id: str, clean: bool, stop: threading.Event) -> _Connection | None:
    while not stop.is_set():
        try:
            return _Connection(port, client_id, clean)
        except OSError:
            time.sleep(0.05)
    return None


class _Publisher(threading.Thread):
    def __init__(self, port: int, qos: int, stop: threading.Event):
        super().__init__(daemon=True)
        self.port, self.qos, self.stop = port, qos, stop
        self.acknowledged: list[str] = []

    def run(self) -> None:
        number = 0
        packet_id = 0
        while not self.stop.is_set():
            connection = _connect_retrying(self.port, f"crash-pub-q{self.qos}", True, self.stop)
            if connection is None:
                return
            try:
                while not self.stop.is_set():
                    number += 1
                    packet_id = packet_id % 65535 + 1
                    payload = f"q{self.qos}-{number}"
                    connection.send(Publish(TOPIC, payload.encode(), self.qos, packet_id=packet_id))
                    answer = connection.receive(5.0)
                    if self.qos == 1 and isinstance(answer, Puback) and answer.packet_id == packet_id:
                        self.acknowledged.append(payload)
                    elif self.qos == 2 and isinstance(answer, Pubrec) and answer.packet_id == packet_id:
                        self.acknowledged.append(payload)  # the broker owns the message now
                        connection.send(Pubrel(packet_id))
                        connection.receive(5.0)  # PUBCOMP
                    else:
                        raise OSError(f"unexpected answer {answer!r}")
            except OSError:
                pass
            finally:
                connection.close()


class _Subscriber(threading.Thread):
    def __init__(self, port: int, stop: threading.Event):
        super().__init__(daemon=True)
        self.port, self.stop = port, stop
        self.received: set[str] = set()
        self.last_message = time.monotonic()
        self.connected = threading.Event()
        self.online = threading.Event()  # cleared: stay away (the broker queues for the session)
        self.online.set()

    def run(self) -> None:
        while not self.stop.is_set():
            if not self.online.wait(0.1):
                continue
            connection = _connect_retrying(self.port, "crash-sub", False, self.stop)
            if connection is None:
                return
            try:
                if not connection.session_present:
                    connection.send(Subscribe(1, [Subscription(TOPIC, 2)]))
                self.connected.set()
                while not self.stop.is_set() and self.online.is_set():
                    packet = connection.receive(0.1)
                    if isinstance(packet, Publish):
                        self.received.add(packet.payload.decode())
                        self.last_message = time.monotonic()
                        if packet.qos == 1:
                            connection.send(Puback(packet.packet_id))
                        elif packet.qos == 2:
                            connection.send(Pubrec(packet.packet_id))
                    elif isinstance(packet, Pubrel):
                        connection.send(Pubcomp(packet.packet_id))
            except OSError:
                self.connected.clear()
            finally:
                connection.close()


class _Broker:
    """One broker process, killed and started again on the same directory and port."""

    def __init__(self, kind: str, autosave: int, mosquitto: str | None):
        self.kind = kind
        self.dir = tempfile.mkdtemp(prefix=f"crash-{kind}-")
        os.chmod(self.dir, 0o777)  # mosquitto started as root drops to the user mosquitto
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true", "persistence true",
                 f"persistence_location {self.dir}/", f"log_dest file {self.dir}/broker.log",
                 "max_queued_messages 0"]  # no limit: nothing dropped for lack of room
        if kind == "refbroker-durable":
            lines.append("persistence_durable_acks true")
        else:
            lines.append(f"autosave_interval {autosave}")
        self.config = os.path.join(self.dir, "broker.conf")
        with open(self.config, "w", encoding="utf-8") as file:
            file.write("\n".join(lines) + "\n")
        os.chmod(self.config, 0o644)
        if kind == "mosquitto":
            self.command = [mosquitto or shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", self.config]
        else:
            self.command = [sys.executable, "-m", "refbroker", "-c", self.config]
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.process.returncode}: see {self.dir}/broker.log")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.kind} did not listen within 20 s")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def run_one(kind: str, *, kills: int, interval: float, autosave: int, mosquitto: str | None = None,
            progress=print) -> Outcome:
    broker = _Broker(kind, autosave, mosquitto)
    stop, publishers_stop = threading.Event(), threading.Event()
    publishers: list[_Publisher] = []
    subscriber = _Subscriber(broker.port, stop)
    try:
        broker.start()
        subscriber.start()
        subscriber.connected.wait(10)
        publishers = [_Publisher(broker.port, qos, publishers_stop) for qos in (1, 2)]
        for publisher in publishers:
            publisher.start()
        for round_number in range(1, kills + 1):
            time.sleep(interval / 2)
            subscriber.online.clear()  # offline: messages queue up in its session
            time.sleep(interval / 2)
            broker.kill()
            broker.start()
            subscriber.online.set()
            progress(f"  {kind}: kill -9 {round_number}/{kills}, "
                     f"{sum(len(p.acknowledged) for p in publishers)} acknowledged so far")
        # Let everything settle: publishers stop, the subscriber drains what the broker kept
        time.sleep(interval)
        publishers_stop.set()
        for publisher in publishers:
            publisher.join(10)
        quiet_since = time.monotonic()
        while time.monotonic() - max(quiet_since, subscriber.last_message) < 3.0:
            time.sleep(0.2)
        stop.set()
        subscriber.join(10)
    finally:
        stop.set()
        publishers_stop.set()
        broker.stop()
    acknowledged = [payload for publisher in publishers for payload in publisher.acknowledged]
    lost = [payload for payload in acknowledged if payload not in subscriber.received]
    outcome = Outcome(kind, kills, len(acknowledged), len(subscriber.received), len(lost),
                      len(subscriber.received - set(acknowledged)), lost[:10])
    broker.cleanup()
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.crash", description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="exit status: 0 done; 1 a broker failed; 2 bad arguments")
    parser.add_argument("--brokers", default=",".join(BROKERS),
                        help=f"comma-separated, of {', '.join(BROKERS)} (default: all)")
    parser.add_argument("--kills", type=int, default=10, help="kill -9 this many times (default 10)")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds of traffic between kills (default 2)")
    parser.add_argument("--autosave", type=int, default=1,
                        help="autosave_interval of refbroker and mosquitto in autosave mode (default 1 s)")
    parser.add_argument("--mosquitto", help="the mosquitto binary (default: on PATH, or /usr/sbin/mosquitto)")
    parser.add_argument("--json", help="also write the outcome to this file")
    options = parser.parse_args(argv)
    brokers = [name.strip() for name in options.brokers.split(",") if name.strip()]
    unknown = [name for name in brokers if name not in BROKERS]
    if unknown or options.kills < 1 or options.interval <= 0:
        parser.error(f"unknown broker(s) {', '.join(unknown)}" if unknown else "--kills >= 1 and --interval > 0")
    outcomes = []
    for kind in brokers:
        print(f"{kind}: {options.kills} x kill -9, {options.interval:g} s apart", flush=True)
        try:
            outcomes.append(run_one(kind, kills=options.kills, interval=options.interval, autosave=options.autosave,
                                    mosquitto=options.mosquitto, progress=lambda text: print(text, flush=True)))
        except RuntimeError as error:
            print(f"Error: {error}", file=sys.stderr)
            return 1
    print()
    print(f"{'broker':<20}{'kills':>6}{'acknowledged':>14}{'received':>10}{'lost':>7}{'extra':>7}")
    for outcome in outcomes:
        print(f"{outcome.broker:<20}{outcome.kills:>6}{outcome.acknowledged:>14}{outcome.received:>10}"
              f"{outcome.lost:>7}{outcome.unacknowledged_received:>7}")
    print("\nlost: acknowledged (PUBACK/PUBREC) but never received by the persistent subscriber; "
          "extra: received without an acknowledgement (allowed)")
    if options.json:
        with open(options.json, "w", encoding="utf-8") as file:
            json.dump([asdict(outcome) for outcome in outcomes], file, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
