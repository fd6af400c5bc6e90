"""The header, the progress lines and the tables (paced and unpaced throughput, latency, summary) the benchmark prints."""

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
    elif scenario.kind == "unpaced":
        latency = figures["latency_us"]
        text += (f" -> {figures['throughput']:,.0f} msg/s, loss {figures['loss_percent']:g} %, latency p50 "
                 f"{latency['p50']:,.0f} µs, p99 {latency['p99']:,.0f} µs")
    else:
        latency = figures["latency_us"]
        text += f"; latency p50 {latency['p50']:,.0f} µs, p99 {latency['p99']:,.0f} µs, max {latency['max']:,.0f} µs"
    if figures["duplicates"]:
        text += f", {figures['duplicates']:,} duplicates"
    if figures["capped"]:
        text += " (time cap reached)"
    return prefix + text


def _cell_throughput(figures: dict | None, notes: list[str], name: str, scenario: Scenario,
                     lost_note: bool = True) -> str:
    if figures is None:
        return "-"
    if "error" in figures:
        notes.append(f"{name}, {scenario.label} {scenario.kind}: {figures['error']}")
        return "error"
    text = f"{figures['throughput']:,.0f}"
    if (figures["lost"] and lost_note) or figures["capped"]:
        why = "time cap reached, " if figures["capped"] else ""
        notes.append(f"{name}, {scenario.label} throughput: {why}{figures['unique']:,} of {figures['expected']:,} "
                     f"messages received")
        text += " *"
    return text


def _cell_loss(figures: dict | None) -> str:
    if not figures or "error" in figures:
        return "-"
    return f"{figures['loss_percent']:g}"


def _cell_p50_p99(figures: dict | None) -> str:
    if not figures or "error" in figures:
        return "-"
    latency = figures["latency_us"]
    return f"{latency['p50']:,.0f} / {latency['p99']:,.0f}"


def _ratio(results: dict, compare: list[str], scenario: Scenario) -> str:
    first, second = (results.get((name, scenario.key)) or {} for name in compare)
    if first.get("throughput") and second.get("throughput"):
        return f"{first['throughput'] / second['throughput']:.2f}"
    return "-"


def summary(results: dict[tuple[str, str], dict], target_names: list[str], scenarios: list[Scenario]) -> str:
    """One row per throughput scenario, paced or not: the table a closing note quotes."""
    brokers = [name for name in target_names if name != CEILING]
    if len(brokers) < 2:
        return ""
    first, second = brokers[:2]
    rows = [["scenario", f"{first} msg/s", f"{second} msg/s", "ratio", f"loss % ({first} / {second})"]]
    for scenario in scenarios:
        if scenario.kind == "latency":
            continue
        found = [results.get((name, scenario.key)) for name in (first, second)]
        cells = [f"{f['throughput']:,.0f}" if f and "error" not in f else "error" for f in found]
        losses = " / ".join(_cell_loss(f) for f in found)
        kind = "paced" if scenario.kind == "throughput" else "unpaced"
        rows.append([f"{kind} {scenario.label}", *cells, _ratio(results, [first, second], scenario), losses])
    if len(rows) == 1:
        return ""
    return (f"Summary: delivered msg/s, {first} beside {second} (ratio {first}/{second}) and the share of messages "
            f"lost\n" + format_table(rows))


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


def format_table(rows: list[list[str]]) -> str:
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
                row.append(_ratio(results, compare, scenario))
            if ceiling:
                row.append(_cell_throughput(results.get((CEILING, scenario.key)), notes, "ceiling", scenario))
            rows.append(row)
        out.append("Throughput (paced): distinct messages received by all subscribers together per second, from the "
                   f"first send to the last receive; QoS 1/2 publishers keep at most {options.window} unacknowledged")
        out.append(format_table(rows))

    unpaced = [s for s in scenarios if s.kind == "unpaced"]
    if unpaced:
        head = ["scenario"] + [f"{name} msg/s" for name in brokers]
        if compare:
            head.append(f"ratio {compare[0]}/{compare[1]}")
        head += [f"{name} loss %" for name in brokers] + [f"{name} p50/p99 µs" for name in brokers]
        if ceiling:
            head.append("generator ceiling msg/s")
        rows = [head]
        for scenario in unpaced:
            found = {name: results.get((name, scenario.key)) for name in brokers}
            row = [scenario.label]
            row += [_cell_throughput(found[name], notes, name, scenario, lost_note=False) for name in brokers]
            if compare:
                row.append(_ratio(results, compare, scenario))
            row += [_cell_loss(found[name]) for name in brokers]
            row += [_cell_p50_p99(found[name]) for name in brokers]
            if ceiling:
                row.append(_cell_throughput(results.get((CEILING, scenario.key)), notes, "ceiling", scenario,
                                            lost_note=False))
            rows.append(row)
        if out:
            out.append("")
        out.append("Unpaced: publishers never wait (as fast as the socket takes the bytes; QoS 1 PUBACKs counted as "
                   "they come); delivered msg/s, messages lost (sent, or for QoS 1 acknowledged, but never "
                   "received), and latency")
        out.append(format_table(rows))

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
        out.append(format_table(rows))
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
