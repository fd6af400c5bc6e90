"""The header, the progress lines and the two tables (throughput, latency) the benchmark prints."""

from __future__ import annotations

import os
import platform
import sys

from .runner import Options, Scenario

CEILING = "relay"


def machine() -> dict:
    return {"cpu_count": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "machine": platform.machine()}


def header(targets, options: Options, subscribers: int, repeat: int) -> str:
    info = machine()
    version = {4: "3.1.1", 5: "5.0"}[options.version]
    lines = [
        (f"MQTT broker benchmark on {info['cpu_count']} CPU cores (os.cpu_count()), {info['platform']}, "
         f"Python {info['python']}"),
        (f"load: MQTT {version}, 64-byte payloads, QoS 1/2 window {options.window}, 1 publisher process and up to "
         f"{options.subscriber_processes} subscriber processes ({subscribers} subscribers for fan-out), raw sockets, "
         f"127.0.0.1"),
        (f"throughput: {options.messages:,} messages 1→1, {options.fanout_messages:,} messages 1→N, as fast as flow "
         f"control allows, median of {repeat} run(s); latency: {options.latency_rate:,.0f} deliveries/s for "
         f"{options.latency_seconds:g} s; at most {options.time_cap:g} s of sending per scenario"),
    ]
    if options.generator_cpus:
        lines.append(f"CPU pinning: brokers on CPU 0 of {info['cpu_count']}, load generator on CPU "
                     f"{','.join(map(str, sorted(options.generator_cpus)))} (--cpu-pinning off to disable)")
    for target in targets:
        lines.append(f"  {target.name:<10} {target.description}")
    if (info["cpu_count"] or 0) <= 2:
        lines.append(f"note: with {info['cpu_count']} cores the broker, the publisher and the subscribers share "
                     "them; compare brokers within one run, not with other machines.")
    return "\n".join(lines)


def progress_line(index: int, total: int, target: str, scenario: Scenario, figures: dict) -> str:
    prefix = f"[{index:>{len(str(total))}}/{total}] {target:<10} {scenario.kind:<10} {scenario.label}: "
    text = (f"{figures['published']:,} published, {figures['unique']:,}/{figures['expected']:,} received "
            f"in {figures['seconds']:.2f} s")
    if scenario.kind == "throughput":
        text += f" -> {figures['throughput']:,.0f} msg/s"
    else:
        latency = figures["latency_us"]
        text += f"; latency p50 {latency['p50']:,.0f} µs, p99 {latency['p99']:,.0f} µs, max {latency['max']:,.0f} µs"
    if figures["duplicates"]:
        text += f", {figures['duplicates']:,} duplicates"
    if figures["capped"]:
        text += " (time cap reached)"
    return prefix + text


def _cell_throughput(figures: dict | None, notes: list[str], name: str, scenario: Scenario) -> str:
    if figures is None:
        return "-"
    if "error" in figures:
        notes.append(f"{name}, {scenario.label} throughput: {figures['error']}")
        return "error"
    text = f"{figures['throughput']:,.0f}"
    if figures["lost"] or figures["capped"]:
        why = "time cap reached, " if figures["capped"] else ""
        notes.append(f"{name}, {scenario.label} throughput: {why}{figures['unique']:,} of {figures['expected']:,} "
                     f"messages received")
        text += " *"
    return text


def _cell_latency(figures: dict | None, notes: list[str], name: str, scenario: Scenario) -> str:
    if figures is None:
        return "-"
    if "error" in figures:
        notes.append(f"{name}, {scenario.label} latency: {figures['error']}")
        return "error"
    latency = figures["latency_us"]
    text = " / ".join(f"{latency[key]:,.0f}" for key in ("p50", "p90", "p99", "max"))
    if figures["lost"]:
        notes.append(f"{name}, {scenario.label} latency: {figures['unique']:,} of {figures['expected']:,} received")
        text += " *"
    return text


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = []
    for number, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells).rstrip())
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def tables(results: dict[tuple[str, str], dict], target_names: list[str], scenarios: list[Scenario],
           options: Options) -> str:
    """`results` maps (target name, scenario key) to figures (or {"error": text})."""
    brokers = [name for name in target_names if name != CEILING]
    ceiling = CEILING in target_names
    compare = brokers[:2] if len(brokers) >= 2 else None
    notes: list[str] = []
    out = []

    throughput = [s for s in scenarios if s.kind == "throughput"]
    if throughput:
        head = ["scenario"] + [f"{name} msg/s" for name in brokers]
        if compare:
            head.append(f"ratio {compare[0]}/{compare[1]}")
        if ceiling:
            head.append("generator ceiling msg/s")
        rows = [head]
        for scenario in throughput:
            row = [scenario.label]
            for name in brokers:
                row.append(_cell_throughput(results.get((name, scenario.key)), notes, name, scenario))
            if compare:
                first, second = (results.get((name, scenario.key)) or {} for name in compare)
                if first.get("throughput") and second.get("throughput"):
                    row.append(f"{first['throughput'] / second['throughput']:.2f}")
                else:
                    row.append("-")
            if ceiling:
                row.append(_cell_throughput(results.get((CEILING, scenario.key)), notes, "ceiling", scenario))
            rows.append(row)
        out.append("Throughput: distinct messages received by all subscribers together per second, from the first "
                   "send to the last receive")
        out.append(_table(rows))

    latency = [s for s in scenarios if s.kind == "latency"]
    if latency:
        head = ["scenario"] + [f"{name} p50/p90/p99/max µs" for name in brokers]
        if ceiling:
            head.append("generator floor p50/p90/p99/max µs")
        rows = [head]
        for scenario in latency:
            row = [scenario.label]
            for name in brokers:
                row.append(_cell_latency(results.get((name, scenario.key)), notes, name, scenario))
            if ceiling:
                row.append(_cell_latency(results.get((CEILING, scenario.key)), notes, "floor", scenario))
            rows.append(row)
        if out:
            out.append("")
        out.append(f"Latency: publisher send to subscriber receive, at {options.latency_rate:,.0f} messages "
                   f"delivered per second (microseconds)")
        out.append(_table(rows))
    if ceiling:
        out.append("")
        out.append("generator ceiling/floor: the same load through `python -m bench.relay`, which copies bytes and "
                   "does no MQTT; a broker figure near it is limited by the generator, not by the broker.")
    if notes:
        out.append("")
        out.extend(f"* {note}" for note in notes)
    return "\n".join(out)


def progress(text: str, quiet: bool) -> None:
    if not quiet:
        print(text, file=sys.stderr, flush=True)
