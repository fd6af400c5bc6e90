"""`python -m pcap`: record, explain, replay and diff MQTT captures; build the reference corpus.

    python -m pcap record --target HOST:PORT -o run.pcapng      recording proxy (no root needed)
    python -m pcap record --live --interface lo --port 1883 -o run.pcapng     (root)
    python -m pcap explain FILE [--html OUT.html] [--hex] [--check-with-tshark]
    python -m pcap replay FILE|DIR... --broker TARGET [--pace fast|original] [--strict]
    python -m pcap corpus build | corpus check-tshark | corpus upgrade-table

Every command has --help. Exit status: 0 on success (for replay: no difference), 1 when a replay shows
differences or tshark disagrees, 2 for a usage error or a file that cannot be read.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path

from .reader import CaptureError, read_capture

__all__ = ["main"]

EXIT_OK, EXIT_DIFFERENT, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A mistake of the user's: printed without a traceback, exit status 2."""


def _host_port(text: str, option: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"{option} needs HOST:PORT with a port 1-65535, not {text!r}")
    return (host.strip("[]") or "127.0.0.1", int(port))


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ record


def _record(args) -> int:
    if args.live:
        return _record_live(args)
    if not args.target:
        raise UsageError("record needs --target HOST:PORT (the broker to forward to), or --live (root)")
    from .proxy import RecordingProxy

    target = _host_port(args.target, "--target")
    listen = _host_port(args.listen, "--listen") if args.listen else ("127.0.0.1", 0)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        proxy = RecordingProxy(target, listen_host=listen[0], listen_port=listen[1]).start()
    except OSError as error:
        raise UsageError(str(error)) from None
    host, port = proxy.address
    _say(f"recording: connect clients to {host}:{port}; forwarding to {target[0]}:{target[1]}; "
         f"Ctrl-C to stop{f' (or after {args.duration:g} s)' if args.duration else ''}")
    seen_open, seen_closed = set(), set()
    deadline = time.monotonic() + args.duration if args.duration else None
    try:
        while not stop.wait(0.2):
            for session in proxy.sessions():
                if session.number not in seen_open:
                    seen_open.add(session.number)
                    _say(f"session {session.number} opened from {session.client[0]}:{session.client[1]}")
                if session.closed is not None and session.number not in seen_closed:
                    seen_closed.add(session.number)
                    _say(f"session {session.number} closed: {len(session.client_bytes)} bytes from the client, "
                         f"{len(session.broker_bytes)} from the broker" +
                         "".join(f"; {note}" for note in session.notes))
            if deadline is not None and time.monotonic() >= deadline:
                break
    finally:
        proxy.wait_closed(1.0)
        sessions = proxy.sessions()
        proxy.stop()
        path = proxy.write_pcapng(args.output, sessions, server_port=args.server_port)
    _say(f"wrote {len(sessions)} session(s) to {path}")
    return EXIT_OK


def _record_live(args) -> int:
    from .live import LiveCaptureError, live_capture

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    ports = set(args.port or [1883])
    _say(f"capturing TCP port(s) {', '.join(map(str, sorted(ports)))} on {args.interface}; Ctrl-C to stop")
    try:
        def report(count: int, warning: str | None) -> None:
            if warning:
                _say(f"warning: {warning}")
        count = live_capture(args.interface, ports, args.output, stop=stop, duration=args.duration, on_frame=report)
    except LiveCaptureError as error:
        raise UsageError(str(error)) from None
    _say(f"wrote {count} frame(s) to {args.output}")
    return EXIT_OK


# ----------------------------------------------------------------------------------------- explain


def _explain(args) -> int:
    from .explain import explain_capture, render_text
    from .explain_html import render_html

    status = EXIT_OK
    for path in args.files:
        capture = read_capture(path, ports=tuple(args.port or ()))
        sessions = explain_capture(capture)
        if args.html:
            out = Path(args.html if len(args.files) == 1 else Path(args.html) / (Path(path).name + ".html"))
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(render_html(sessions, source=str(path), skipped=capture.skipped), encoding="utf-8")
            _say(f"wrote {out}")
        else:
            sys.stdout.write(render_text(sessions, hex_dump=args.hex, skipped=capture.skipped, source=str(path)))
    if args.check_with_tshark:
        status = _tshark_check(args.files)
    return status


def _tshark_check(files, quiet: bool = False) -> int:
    from .tshark import TsharkError, check_captures

    try:
        report = check_captures(files, progress=None if quiet else _say)
    except TsharkError as error:
        raise UsageError(str(error)) from None
    print(f"tshark check ({report.tshark_version}): {report.summary()}")
    for verdict in report.verdicts:
        if verdict.outcome != "agree" and (verdict.outcome in ("disagree", "unmatched") or not quiet):
            print(f"  {verdict.outcome}: {verdict.file} session {verdict.session} {verdict.direction} "
                  f"#{verdict.index + 1} {verdict.name}: {verdict.detail}")
    return EXIT_DIFFERENT if report.problems() else EXIT_OK


# ------------------------------------------------------------------------------------------ replay


def _capture_files(items: list[str]) -> list[Path]:
    files: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            suffixes = (".pcapng", ".pcap", ".pcapng.gz", ".pcap.gz")
            found = sorted(p for p in path.rglob("*") if p.name.endswith(suffixes))
            if not found:
                raise UsageError(f"{path}: no .pcapng/.pcap files in this directory")
            files += found
        elif not path.exists():
            raise UsageError(f"{path}: no such file or directory")
        else:
            files.append(path)
    return files


def _start_target(option: str):
    from conformance.client import HarnessError
    from conformance.targets import target_from_option

    try:
        target = target_from_option(option)
    except ValueError as error:
        raise UsageError(str(error)) from None
    _say(f"starting broker target {option} ...")
    try:
        target.start()
    except HarnessError as error:
        raise UsageError(f"the broker target {option} did not start: {error}") from None
    _say(f"broker: {target.version_string} at {target.address[0]}:{target.address[1]}")
    return target


def _stop_target(target) -> None:
    try:
        target.stop()
    finally:
        cleanup = getattr(target, "cleanup", None)
        if callable(cleanup):
            cleanup()


def _replay(args) -> int:
    from .corpus_replay import replay_files, write_json

    files = _capture_files(args.files)
    captures = [(path, read_capture(path, ports=tuple(args.port or ()))) for path in files]  # fail early
    target = _start_target(args.broker)
    try:
        outcome = replay_files(captures, target.address, pace=args.pace, strict=args.strict,
                               answer_timeout=args.answer_timeout, output=args.output, progress=_say,
                               target_name=f"{args.broker} ({target.version_string})")
    finally:
        _stop_target(target)
    print(outcome.text())
    if args.json:
        write_json(outcome, args.json)
        _say(f"wrote {args.json}")
    return EXIT_OK if outcome.equal else EXIT_DIFFERENT


# ------------------------------------------------------------------------------------------ corpus


def _corpus(args) -> int:
    from . import corpus

    if args.corpus_command == "build":
        parts = tuple(args.parts.split(","))
        if not set(parts) <= set(corpus.PARTS):
            raise UsageError(f"--parts takes {' and/or '.join(corpus.PARTS)}, not {args.parts!r}")
        corpus.build(Path(args.out), versions=args.versions.split(","), progress=_say, keep_racy=args.keep_racy,
                     parts=parts, interop_clients=tuple(args.interop_client or corpus.INTEROP_CLIENTS))
        return EXIT_OK
    if args.corpus_command == "check-tshark":
        manifest = corpus.load_manifest(Path(args.dir))
        return _tshark_check([Path(args.dir) / entry["file"] for entry in manifest["captures"]], quiet=True)
    if args.corpus_command == "upgrade-table":
        table = corpus.upgrade_table(Path(args.dir), versions=args.versions.split(","), pace=args.pace,
                                     progress=_say, extra_targets=args.target or [])
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
        print(corpus.table_text(table))
        _say(f"wrote {args.output}")
        return EXIT_OK
    raise UsageError("corpus needs a command: build, check-tshark or upgrade-table")


# -------------------------------------------------------------------------------------------- main


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pcap", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Run 'python -m pcap COMMAND --help' for a command's options.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    record = commands.add_parser("record", help="record MQTT sessions to a pcapng file (proxy, or live as root)",
                                 description="Record every TCP session between MQTT clients and a broker to a pcapng "
                                             "file Wireshark opens. By default a recording proxy: clients connect to "
                                             "--listen (default: a free port, printed), the proxy forwards to --target "
                                             "and keeps every byte both ways; no root needed. With --live (root), "
                                             "capture an interface instead.")
    record.add_argument("-o", "--output", required=True, help="the pcapng file to write")
    record.add_argument("--target", metavar="HOST:PORT", help="the broker to forward to (proxy mode)")
    record.add_argument("--listen", metavar="HOST:PORT",
                        help="where the proxy listens (default 127.0.0.1 and a free port)")
    record.add_argument("--server-port", type=int, default=None, metavar="PORT",
                        help="broker port written in the file (e.g. 1883 so Wireshark dissects MQTT; "
                             "default: the real one)")
    record.add_argument("--duration", type=float, default=None, metavar="SECONDS", help="stop after this time")
    record.add_argument("--live", action="store_true", help="capture an interface (root) instead of proxying")
    record.add_argument("--interface", default="lo", help="interface for --live (default lo)")
    record.add_argument("--port", type=int, action="append", help="TCP port(s) to keep with --live (default 1883)")

    explain = commands.add_parser("explain", help="every MQTT packet, field, property and governing statement",
                                  description="Explain captures (from this tool, tcpdump, Wireshark): every MQTT "
                                              "packet "
                                              "of every session in both directions with its time, fields, properties "
                                              "and the ids of the normative statements that govern them. TCP is "
                                              "reassembled, so packets split across segments or merged in one are read "
                                              "right.")
    explain.add_argument("files", nargs="+", metavar="FILE", help="pcap or pcapng file(s), gzip allowed")
    explain.add_argument("--html", metavar="OUT",
                         help="write an HTML page (a directory with several files) instead of text")
    explain.add_argument("--hex", action="store_true", help="show every packet's bytes")
    explain.add_argument("--port", type=int, action="append",
                         help="decode this broker port as MQTT even without CONNECT")
    explain.add_argument("--check-with-tshark", action="store_true",
                         help="compare our decoding with tshark's MQTT dissector, packet by packet "
                              "(exit 1 on a disagreement)")

    replay = commands.add_parser("replay", help="replay the client side against a broker and diff its answers",
                                 description="Send the client side of every session of the capture(s) to a broker, "
                                             "record its answers and compare them with the recorded ones. What may "
                                             "legitimately differ is normalised by explicit rules, listed in the "
                                             "output; --strict compares bytes. Exit status 0 only without differences.")
    replay.add_argument("files", nargs="+", metavar="FILE|DIR", help="captures, or directories of captures")
    replay.add_argument("--broker", required=True, metavar="TARGET",
                        help="refbroker, mosquitto, mosquitto:/path, docker:mosquitto-2.0.21, HOST:PORT (as the suite)")
    replay.add_argument("--pace", choices=("fast", "original"), default="fast",
                        help="fast: as soon as the broker's recorded answers are in (default); original: also keep "
                             "the recorded times (for Keep Alive, Will Delay, expiry)")
    replay.add_argument("--strict", action="store_true", help="compare the broker's bytes exactly, no normalisation")
    replay.add_argument("--answer-timeout", type=float, default=1.0, metavar="SECONDS",
                        help="extra wait for an answer the recording had (default 1)")
    replay.add_argument("--port", type=int, action="append",
                        help="decode this broker port as MQTT even without CONNECT")
    replay.add_argument("--output", metavar="DIR", help="also write each replay as a pcapng capture in DIR")
    replay.add_argument("--json", metavar="FILE", help="write the differences as JSON")

    corpus = commands.add_parser("corpus", help="the reference corpus of real mosquitto versions (pcap/captures)",
                                 description="build: record the conformance suite against each mosquitto Docker image, "
                                             "keep the captures that replay identically on their own version, write "
                                             "the manifest. check-tshark: tshark against our decoder on the whole "
                                             "corpus. upgrade-table: replay each version's corpus against the others.")
    corpus_commands = corpus.add_subparsers(dest="corpus_command", metavar="COMMAND")
    default_dir = str(Path(__file__).parent / "captures")
    build = corpus_commands.add_parser("build", help="regenerate pcap/captures (needs Docker and the images)")
    build.add_argument("--out", default=default_dir, help=f"corpus directory (default {default_dir})")
    build.add_argument("--versions", default="2.0.11,2.0.21,2.1.2", help="mosquitto versions (default all three)")
    build.add_argument("--parts", default="suite,interop",
                       help="what to record: suite (the conformance suite's conversations), interop (client "
                            "libraries' conversations, interop's scenarios) or both (default)")
    build.add_argument("--interop-client", action="append", metavar="CLIENT",
                       help="interop client library to record (repeatable; default paho-mqtt, gmqtt, mosquitto-cli)")
    build.add_argument("--keep-racy", action="store_true", help="keep captures that do not replay identically on "
                                                               "their own version (marked in the manifest)")
    check = corpus_commands.add_parser("check-tshark", help="tshark's dissector against our decoder over the corpus")
    check.add_argument("--dir", default=default_dir, help="corpus directory")
    table = corpus_commands.add_parser("upgrade-table", help="what changes on the wire between mosquitto versions")
    table.add_argument("--dir", default=default_dir, help="corpus directory")
    table.add_argument("--versions", default="2.0.11,2.0.21,2.1.2", help="versions to pair (default all three)")
    table.add_argument("--pace", choices=("fast", "original"), default="fast",
                       help="replay pacing (default fast, the pacing the corpus build checked its captures with)")
    table.add_argument("--target", action="append", metavar="TARGET",
                       help="also replay the oldest version's corpus against this target (e.g. refbroker)")
    table.add_argument("-o", "--output", default="test-output/pcap-upgrade.json",
                       help="JSON file for the report (default test-output/pcap-upgrade.json, which "
                            "tox -e report-matrix reads)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    handlers = {"record": _record, "explain": _explain, "replay": _replay, "corpus": _corpus}
    try:
        return handlers[args.command](args)
    except (UsageError, CaptureError) as error:
        print(f"python -m pcap {args.command}: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `python -m pcap explain FILE | head`
        return EXIT_OK
