"""One scenario against one target: start the subscriber processes, wait until they are subscribed,
start the publisher process, collect what every process counted, and turn it into figures.

Throughput is end to end: distinct messages received by all subscribers together, divided by the time
from the publisher's first send to the last receive. Latency is the receive time minus the send time
written into each payload, for every message received, at a fixed publish rate low enough that no
queue builds up.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import time
from dataclasses import dataclass

from . import workers
from .targets import Target, TargetError

KINDS = ("throughput", "unpaced", "latency", "capacity")
HANDSHAKE_TIMEOUT = 30.0


class ScenarioError(Exception):
    """A scenario could not be completed; the message says why."""


@dataclass(frozen=True)
class Scenario:
    """`publishers` publish to one topic, `fanout` subscribers subscribe to it: each receives every message.

    kind: "throughput" (publishers keep at most --window QoS 1/2 PUBLISHes unacknowledged: paced by
    the broker's acknowledgements), "unpaced" (publishers never wait: as fast as the socket takes the
    bytes, QoS 1 acknowledgements counted as they come), "latency" (a fixed, moderate rate)."""

    qos: int
    fanout: int
    kind: str
    publishers: int = 1

    @property
    def key(self) -> str:
        return f"{self.kind}-qos{self.qos}-{self.publishers}to{self.fanout}"

    @property
    def label(self) -> str:
        return f"QoS {self.qos}  {self.publishers}→{self.fanout}"


@dataclass(frozen=True)
class Options:
    messages: int = 50_000           # PUBLISHes in 1→1 throughput scenarios
    fanout_messages: int = 2_000     # PUBLISHes in 1→N throughput scenarios (N times as many deliveries)
    unpaced_messages: int = 100_000  # PUBLISHes in the unpaced 1→1 scenarios (all publishers together)
    latency_rate: float = 1000.0     # messages delivered per second in latency scenarios (all subscribers)
    latency_seconds: float = 2.0
    window: int = 20
    time_cap: float = 30.0           # seconds of sending per scenario
    version: int = 4
    subscriber_processes: int = 2    # for fan-out; 1→1 uses one
    grace: float = 5.0               # seconds of silence after the publisher is done before subscribers give up
    generator_cpus: frozenset[int] | None = None  # pin the publisher and subscribers to these CPUs


def scenario_load(scenario: Scenario, options: Options, target: Target, topic: str) -> workers.LoadSpec:
    if scenario.kind == "throughput":
        messages = options.messages if scenario.fanout == 1 else options.fanout_messages
        rate = None
    elif scenario.kind == "unpaced":
        # The same number of deliveries as the paced scenario with that fan-out, spread over the publishers
        total = options.unpaced_messages if scenario.fanout == 1 else options.fanout_messages * 100 // scenario.fanout
        messages = max(1, total // scenario.publishers)
        rate = None
    else:
        rate = options.latency_rate / scenario.fanout
        messages = max(10, round(rate * options.latency_seconds))
    return workers.LoadSpec(target.host, target.port, topic, scenario.qos, options.version, messages, options.window,
                            rate, options.time_cap, collect_latency=scenario.kind != "throughput",
                            cpus=options.generator_cpus, publishers=scenario.publishers,
                            unpaced=scenario.kind == "unpaced")


def percentile(ordered: list[int], fraction: float) -> int:
    """Nearest-rank percentile of an ascending list."""
    if not ordered:
        return 0
    rank = max(1, -(-len(ordered) * fraction // 1))  # ceil(n * fraction), at least 1
    return ordered[int(rank) - 1]


_run_counter = 0


def run_scenario(target: Target, scenario: Scenario, options: Options) -> dict:
    """Run one scenario; returns its figures (see `_figures`). Raises ScenarioError."""
    global _run_counter
    _run_counter += 1
    target.check_alive()
    topic = f"bench/{os.getpid()}/{_run_counter}/{scenario.key}"
    load = scenario_load(scenario, options, target, topic)
    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    publisher_done = context.Event()
    processes = []
    groups = _groups(scenario.fanout, options.subscriber_processes)
    try:
        for number, connections in enumerate(groups):
            group = workers.SubscriberGroup(load, number, connections, options.grace)
            process = context.Process(target=workers.run_subscribers, args=(group, events, publisher_done),
                                      name=f"bench-subscribers-{number}", daemon=True)
            process.start()
            processes.append(process)
        ready = 0
        deadline = time.monotonic() + HANDSHAKE_TIMEOUT
        while ready < len(groups):
            event = _next_event(events, deadline, processes, "subscribers to connect and subscribe")
            if event[0] == "ready":
                ready += 1
        publisher = context.Process(target=workers.run_publisher, args=(load, events), name="bench-publisher",
                                    daemon=True)
        publisher.start()
        processes.append(publisher)
        published = None
        received = []
        deadline = time.monotonic() + options.time_cap + HANDSHAKE_TIMEOUT
        while published is None or len(received) < len(groups):
            event = _next_event(events, deadline, processes, "the scenario to finish")
            if event[0] == "publisher":
                published = event[1]
                publisher_done.set()
            elif event[0] == "subscribers":
                received.append(event[1])
    finally:
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
        events.close()
    try:
        target.check_alive()
    except TargetError as error:
        raise ScenarioError(str(error)) from None
    return _figures(target, scenario, load, published, received)


def _groups(fanout: int, processes: int) -> list[int]:
    """Spread `fanout` subscriber connections over at most `processes` processes."""
    count = max(1, min(processes, fanout))
    return [fanout // count + (1 if index < fanout % count else 0) for index in range(count)]


def _next_event(events, deadline: float, processes, waiting_for: str) -> tuple:
    while True:
        try:
            event = events.get(timeout=min(0.5, max(0.01, deadline - time.monotonic())))
        except queue.Empty:
            if time.monotonic() > deadline:
                raise ScenarioError(f"timed out waiting for {waiting_for}") from None
            for process in processes:
                if process.exitcode not in (None, 0):
                    raise ScenarioError(f"{process.name} died with exit code {process.exitcode}") from None
            continue
        if event[0] == "error":
            raise ScenarioError(f"{event[1]}: {event[2]}")
        return event


def _figures(target: Target, scenario: Scenario, load: workers.LoadSpec, published: dict,
             received: list[dict]) -> dict:
    expected = published["sent"] * scenario.fanout
    unique = sum(result["unique"] for result in received)
    last_receive = max((result["last_receive_ns"] for result in received), default=0)
    seconds = max(0.0, (last_receive - published["first_send_ns"]) / 1e9) if unique else 0.0
    send_seconds = (published["last_send_ns"] - published["first_send_ns"]) / 1e9
    figures = {
        "target": target.name,
        "scenario": scenario.key,
        "kind": scenario.kind,
        "qos": scenario.qos,
        "fanout": scenario.fanout,
        "publishers": scenario.publishers,
        "planned": load.messages * load.publishers,
        "published": published["sent"],
        "acknowledged": published["acknowledged"],
        "refused": published["refused"],
        "expected": expected,
        "received": sum(result["received"] for result in received),
        "unique": unique,
        "duplicates": sum(result["duplicates"] for result in received),
        "lost": expected - unique,
        "loss_percent": round(100 * (expected - unique) / expected, 2) if expected else 0.0,
        "seconds": round(seconds, 4),
        "throughput": round(unique / seconds, 1) if seconds > 0 else 0.0,
        "publish_rate": round(published["sent"] / send_seconds, 1) if send_seconds > 0 else 0.0,
        "capped": bool(published["capped"] or any(result["capped"] for result in received)),
        "rate": load.rate,
    }
    if scenario.kind != "throughput":
        latencies = sorted(latency for result in received for latency in result["latencies_ns"])
        figures["latency_us"] = {
            "samples": len(latencies),
            "p50": round(percentile(latencies, 0.50) / 1000, 1),
            "p90": round(percentile(latencies, 0.90) / 1000, 1),
            "p99": round(percentile(latencies, 0.99) / 1000, 1),
            "max": round((latencies[-1] if latencies else 0) / 1000, 1),
        }
    return figures
