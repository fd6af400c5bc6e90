"""`python -m bench`: end-to-end throughput and latency of MQTT brokers, side by side."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from dataclasses import asdict

from refbroker.cli_hints import SuggestingArgumentParser

from . import capacity, report
from .runner import KINDS, Options, Scenario, ScenarioError, run_scenario
from .targets import ProcessTarget, Target, TargetError, make_target

DESCRIPTION = """\
Measure end-to-end MQTT throughput and latency: QoS 0, 1 and 2, with 64-byte payloads, one publisher
to one subscriber (1→1) and to 100 subscribers of one topic (1→100).

By default refbroker (`python -m refbroker -c CONF`, its own process) and mosquitto (the local binary)
are started on free 127.0.0.1 ports, every scenario runs against both, and the table shows the
ratio refbroker/mosquitto. The same load is also run through a trivial relay that does no MQTT, to
show the load generator's own ceiling.

Throughput: the publisher sends as fast as flow control allows (QoS 1/2: at most --window PUBLISHes
unacknowledged); the figure is distinct messages received by all subscribers together per second,
from the first send to the last receive. Only messages that arrive count.
Latency: the publisher sends at a fixed, moderate rate with a timestamp in each payload; each
subscriber records receive time minus send time; p50/p90/p99/max over all of them.
"""

EPILOG = """\
examples:
  python -m bench                                   refbroker vs mosquitto, every scenario
  python -m bench --qos 0,1 --fanout 1 --json out.json
  python -m bench --target 127.0.0.1:1883 --no-ceiling
  python -m bench --target refbroker --refbroker-profile broker.prof --qos 1 --fanout 1 --kind throughput
      (then: python -m pstats broker.prof, or python -c "import pstats; pstats.Stats('broker.prof')
       .sort_stats('tottime').print_stats(20)")

exit status: 0 all scenarios ran; 1 a target or scenario failed; 2 bad arguments.
"""


def _int_list(allowed: set[int] | None, what: str):
    def parse(text: str) -> list[int]:
        try:
            values = [int(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what}: expected comma-separated integers, got {text!r}") from None
        if not values:
            raise argparse.ArgumentTypeError(f"{what}: empty list")
        for value in values:
            if (allowed is not None and value not in allowed) or value < 1 and allowed is None:
                choices = ", ".join(map(str, sorted(allowed))) if allowed else "positive integers"
                raise argparse.ArgumentTypeError(f"{what}: {value} is not one of {choices}")
        return sorted(set(values))
    return parse


def _kinds(text: str) -> list[str]:
    kinds = [part.strip() for part in text.split(",") if part.strip()]
    for kind in kinds:
        if kind not in KINDS:
            raise argparse.ArgumentTypeError(f"kind {kind!r}: expected {' or '.join(KINDS)}")
    if not kinds:
        raise argparse.ArgumentTypeError("empty list of kinds")
    return [kind for kind in KINDS if kind in kinds]


def _bounded(kind, low, high, what: str):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what}: {text!r} is not a number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what}: {value} is outside {low}..{high}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = SuggestingArgumentParser(prog="python -m bench", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", action="append", metavar="TARGET",
                        help="refbroker, mosquitto, relay (the generator's ceiling) or HOST:PORT of a running "
                             "broker on a loopback address; repeat to compare (default: refbroker and mosquitto)")
    parser.add_argument("--qos", type=_int_list({0, 1, 2}, "--qos"), default=[0, 1, 2], metavar="LIST",
                        help="QoS levels, e.g. 0,1 (default: 0,1,2)")
    parser.add_argument("--fanout", type=_int_list({1, 10, 100}, "--fanout"), default=[1, 10, 100], metavar="LIST",
                        help="1 for 1→1, 100 for 1→N with N=--subscribers, 10 for 10→10 (ten publishers, ten "
                             "subscribers; unpaced scenarios only) (default: 1,10,100)")
    parser.add_argument("--kind", type=_kinds, default=list(KINDS), metavar="LIST",
                        help="throughput (paced by acknowledgements), unpaced (publishers never wait), latency, "
                             "capacity (memory per idle connection and retained message, 100,000 retained messages "
                             "to a new subscriber, 10 MB / 100 MB payloads, message_size_limit, max_connections) "
                             "(default: all four)")
    parser.add_argument("--subscribers", type=_bounded(int, 2, 1000, "--subscribers"), default=100, metavar="N",
                        help="subscribers in the fan-out scenarios (default: 100)")
    parser.add_argument("--messages", type=_bounded(int, 1, 10_000_000, "--messages"), default=50_000, metavar="N",
                        help="PUBLISHes in 1→1 throughput scenarios (default: 50000)")
    parser.add_argument("--fanout-messages", type=_bounded(int, 1, 1_000_000, "--fanout-messages"), default=2_000,
                        metavar="N", help="PUBLISHes in fan-out throughput scenarios, each delivered to every "
                                          "subscriber; unpaced 10→10 sends as many deliveries (default: 2000)")
    parser.add_argument("--unpaced-messages", type=_bounded(int, 1, 10_000_000, "--unpaced-messages"),
                        default=100_000, metavar="N", help="PUBLISHes in unpaced 1→1 scenarios (default: 100000)")
    parser.add_argument("--repeat", type=_bounded(int, 1, 20, "--repeat"), default=3, metavar="N",
                        help="run each throughput scenario N times (round the targets) and report the median run: "
                             "small machines are noisy (default: 3)")
    parser.add_argument("--latency-rate", type=_bounded(float, 1, 100_000, "--latency-rate"), default=1000.0,
                        metavar="R", help="messages delivered per second in latency scenarios, all subscribers "
                                          "together; the publish rate is R/N for 1→N (default: 1000)")
    parser.add_argument("--latency-seconds", type=_bounded(float, 0.1, 60, "--latency-seconds"), default=2.0,
                        metavar="S", help="length of each latency scenario (default: 2)")
    parser.add_argument("--window", type=_bounded(int, 1, 65535, "--window"), default=20, metavar="N",
                        help="QoS 1/2 PUBLISHes the publisher may have unacknowledged; 20 matches both brokers' "
                             "receive maximum (default: 20)")
    parser.add_argument("--time-cap", type=_bounded(float, 1, 120, "--time-cap"), default=30.0, metavar="S",
                        help="seconds of sending per scenario at most; a capped scenario counts what arrived "
                             "(default: 30)")
    parser.add_argument("--mqtt-version", choices=["3.1.1", "5.0"], default="3.1.1",
                        help="protocol of the load generator (default: 3.1.1)")
    parser.add_argument("--subscriber-processes", type=_bounded(int, 1, 64, "--subscriber-processes"), default=2,
                        metavar="N", help="processes the fan-out subscribers are spread over (default: 2)")
    parser.add_argument("--cpu-pinning", choices=["auto", "off"], default="auto",
                        help="auto: with 2 or more CPUs, brokers (and the relay) run on the first CPU and the load "
                             "generator on the others, so each single-threaded broker gets one whole core and "
                             "runs are repeatable; off: let the scheduler decide (default: auto)")
    parser.add_argument("--max-queued-messages", type=_bounded(int, 0, 2**31 - 1, "--max-queued-messages"),
                        default=1000, metavar="N",
                        help="max_queued_messages of the brokers we start (default: 1000, both brokers' default)")
    parser.add_argument("--no-ceiling", action="store_true",
                        help="do not run the load through the relay to show the generator's ceiling")
    parser.add_argument("--mosquitto", metavar="PATH", help="mosquitto binary (default: from PATH or /usr/sbin)")
    parser.add_argument("--refbroker-profile", metavar="FILE",
                        help="run refbroker under cProfile and write the profile to FILE when it stops")
    parser.add_argument("--json", metavar="FILE", help="also write every figure to FILE as JSON")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    return parser


def _cpu_split(mode: str) -> tuple[frozenset[int] | None, frozenset[int] | None]:
    """(CPUs for the brokers, CPUs for the load generator), or (None, None) without pinning."""
    if mode == "off" or not hasattr(os, "sched_setaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return frozenset(cpus[:1]), frozenset(cpus[1:])


def _median_run(runs: list[dict]) -> dict:
    """The run with the median throughput (the lower middle one of an even count); every run's
    throughput is kept under "runs". A failed run makes the result a failure."""
    for figures in runs:
        if "error" in figures:
            return figures
    ordered = sorted(runs, key=lambda figures: figures["throughput"])
    median = dict(ordered[(len(ordered) - 1) // 2])
    if len(runs) > 1:
        median["runs"] = [figures["throughput"] for figures in runs]
    return median


def _scenarios(arguments) -> list[Scenario]:
    """Every kind x fan-out x QoS asked for. 10→10 exists only unpaced; unpaced has QoS 0 and 1."""
    shapes = {1: (1, 1), 10: (10, 10), 100: (1, arguments.subscribers)}
    scenarios = []
    for kind in arguments.kind:
        if kind == "capacity":
            continue  # not a load scenario: see capacity.py
        for fanout in arguments.fanout:
            if fanout == 10 and kind != "unpaced":
                continue
            publishers, subscribers = shapes[fanout]
            for qos in arguments.qos:
                if kind == "unpaced" and qos == 2:
                    continue
                scenarios.append(Scenario(qos, subscribers, kind, publishers))
    return scenarios


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    target_specs = arguments.target or ["refbroker", "mosquitto"]
    if len(set(target_specs)) != len(target_specs):
        parser.error("each --target may be given once")
    if arguments.json and not os.path.isdir(os.path.dirname(os.path.abspath(arguments.json))):
        parser.error(f"--json {arguments.json}: no such directory")
    if not arguments.no_ceiling and "relay" not in target_specs:
        target_specs = target_specs + ["relay"]
    broker_cpus, generator_cpus = _cpu_split(arguments.cpu_pinning)
    options = Options(messages=arguments.messages, fanout_messages=arguments.fanout_messages,
                      unpaced_messages=arguments.unpaced_messages,
                      latency_rate=arguments.latency_rate, latency_seconds=arguments.latency_seconds,
                      window=arguments.window, time_cap=arguments.time_cap,
                      version=5 if arguments.mqtt_version == "5.0" else 4,
                      subscriber_processes=arguments.subscriber_processes, generator_cpus=generator_cpus)
    scenarios = _scenarios(arguments)
    try:
        targets = [make_target(spec, mosquitto=arguments.mosquitto, refbroker_profile=arguments.refbroker_profile)
                   for spec in target_specs]
    except TargetError as error:
        parser.error(str(error))
    for target in targets:
        if isinstance(target, ProcessTarget):
            target.max_queued_messages = arguments.max_queued_messages
            if broker_cpus:
                target.cpus = set(broker_cpus)

    started: list[Target] = []
    results: dict[tuple[str, str], dict] = {}
    capacity_results: dict[str, dict] = {}
    failed = False
    try:
        for target in targets:
            report.progress(f"starting {target.name} ...", arguments.quiet)
            target.start()
            started.append(target)
        print(report.header(targets, options, arguments.subscribers, arguments.repeat), flush=True)
        print(flush=True)
        repeats = {scenario: arguments.repeat if scenario.kind != "latency" else 1 for scenario in scenarios}
        total = sum(repeats.values()) * len(targets)
        index = 0
        for scenario in scenarios:
            runs: dict[str, list[dict]] = {target.name: [] for target in targets}
            # Repetitions go round the targets, so a noisy moment of the machine hits them alike
            for repetition in range(repeats[scenario]):
                for target in targets:
                    index += 1
                    run = f" (run {repetition + 1}/{repeats[scenario]})" if repeats[scenario] > 1 else ""
                    try:
                        figures = run_scenario(target, scenario, options)
                    except (ScenarioError, TargetError) as error:
                        failed = True
                        figures = {"target": target.name, "scenario": scenario.key, "error": str(error)}
                        report.progress(f"[{index}/{total}] {target.name} {scenario.kind} {scenario.label}{run}: "
                                        f"FAILED: {error}", quiet=False)
                    else:
                        report.progress(report.progress_line(index, total, target.name, scenario, figures) + run,
                                        arguments.quiet)
                    runs[target.name].append(figures)
            for name, figures_of_runs in runs.items():
                results[(name, scenario.key)] = _median_run(figures_of_runs)
        if "capacity" in arguments.kind:
            for target in targets:
                if target.name == report.CEILING:
                    continue
                capacity_results[target.name] = capacity.measure(
                    target, lambda text: report.progress(text, arguments.quiet))
    except TargetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        for target in started:
            target.stop()
    print(report.tables(results, [target.name for target in targets], scenarios, options), flush=True)
    if capacity_results:
        print("\n" + capacity.table(capacity_results, list(capacity_results)), flush=True)
    overview = report.summary(results, [target.name for target in targets], scenarios)
    if overview:
        print("\n" + overview, flush=True)
    if arguments.json:
        document = {
            "generated": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "command": ["python", "-m", "bench", *(sys.argv[1:] if argv is None else argv)],
            "machine": report.machine(),
            "options": asdict(options) | {"subscribers": arguments.subscribers, "payload_size": 64,
                                          "generator_cpus": sorted(generator_cpus or []),
                                          "broker_cpus": sorted(broker_cpus or [])},
            "targets": {target.name: target.description for target in targets},
            "results": list(results.values()),
            "capacity": capacity_results,
        }
        try:
            with open(arguments.json, "w") as output:
                json.dump(document, output, indent=2)
                output.write("\n")
        except OSError as error:
            print(f"error: cannot write {arguments.json}: {error.strerror or error}", file=sys.stderr)
            return 1
        report.progress(f"figures written to {arguments.json}", arguments.quiet)
    return 1 if failed else 0
