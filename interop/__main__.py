"""python -m interop: the interop tools' command line.

    python -m interop run BROKER [--client C ...] [--scenario S ...] [--results FILE] [--jobs N]
                                                the client x scenario matrix against one broker target
    python -m interop list                      broker targets, client libraries and scenarios
    python -m interop images list               the known mosquitto images and which are built
    python -m interop images build [SUITE|all]  build them from Debian packages (root, debootstrap, Docker)
"""

from __future__ import annotations

import argparse
import sys
import textwrap

from refbroker.cli_hints import SuggestingArgumentParser

from .docker_engine import DockerUnavailable, ensure_engine
from .images import IMAGES, ImageBuildError, build_image, describe_images, spec_for

_SUITES = ", ".join(f"{spec.suite} (mosquitto {spec.mosquitto_version})" for spec in IMAGES.values())


def _parser() -> argparse.ArgumentParser:
    parser = SuggestingArgumentParser(
        prog="python -m interop",
        description="Interop tools: the client library x broker x scenario matrix, and Docker images of "
                    "real mosquitto versions.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    images = commands.add_parser(
        "images", help="list or build the mosquitto images",
        description="Docker images of real mosquitto releases, built locally from Debian packages with "
                    f"debootstrap (no registry needed). Known suites: {_SUITES}.")
    actions = images.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", help="show the known images, whether each is built, its version and size",
                       description="Show the known images and what the Docker engine has of them. Starts "
                                   "dockerd (as root) if no engine answers, and stops it afterwards.")
    build = actions.add_parser(
        "build", help="build images (minutes each; needs root, debootstrap, Docker and deb.debian.org)",
        description=textwrap.fill(
            "Build images with `debootstrap --variant=minbase --include=mosquitto SUITE` and `docker import` "
            "(about 30-50 s each). An image whose tag exists already is kept unless --force. Needs root, "
            "debootstrap (apt-get install debootstrap), deb.debian.org and a Docker engine "
            "(apt-get install docker.io; dockerd is started here if none answers, and stopped afterwards).", 79),
        epilog="examples:  python -m interop images build trixie\n"
               "           python -m interop images build 2.1.2 --force\n"
               "           python -m interop images build          (all of them)",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    build.add_argument("suite", nargs="?", default="all", metavar="SUITE|all",
                       help=f"a Debian suite or mosquitto version ({_SUITES}), or 'all' (the default)")
    build.add_argument("--force", action="store_true", help="rebuild even if the image exists")
    from .brokers import BROKERS
    from .clients import CLIENTS
    from .scenarios import SCENARIOS

    run = commands.add_parser(
        "run", help="run the client x scenario matrix against one broker target",
        description="Start one broker target, run every client library x scenario x MQTT version that applies "
                    "(each cell through a recording proxy), write interop results and stop everything.",
        epilog="example:  python -m interop run mosquitto --client paho-mqtt --scenario wildcards")
    run.add_argument("broker", choices=list(BROKERS), metavar="BROKER", help=f"one of: {', '.join(BROKERS)}")
    run.add_argument("--client", action="append", choices=list(CLIENTS), metavar="CLIENT",
                     help=f"only this client library (repeatable): {', '.join(CLIENTS)}")
    run.add_argument("--scenario", action="append", choices=list(SCENARIOS), metavar="SCENARIO",
                     help=f"only this scenario (repeatable): {', '.join(SCENARIOS)}")
    run.add_argument("--results", metavar="FILE", help="results file (default results/interop/BROKER.json)")
    run.add_argument("--jobs", type=int, default=2, metavar="N", help="cells run at once (default 2)")
    run.add_argument("--capture-dir", metavar="DIR",
                     help="also keep each cell's plain-TCP conversation as a pcapng capture in DIR")
    commands.add_parser("list", help="broker targets, client libraries and scenarios")
    return parser


def _list_all() -> int:
    from .brokers import build_target
    from .clients import CLIENTS
    from .scenarios import SCENARIOS
    from .brokers import BROKERS
    print("broker targets:")
    for name in BROKERS:
        target = build_target(name)
        why = target.unavailable()
        print(f"  {name:<18} MQTT {'/'.join(target.capabilities.versions):<10} "
              + (f"unavailable: {why}" if why else "available"))
    print("client libraries:")
    for spec in CLIENTS.values():
        why = spec.unavailable()
        print(f"  {spec.name:<18} MQTT {'/'.join(spec.versions):<10} " + (f"unavailable: {why}" if why else "available"))
    print("scenarios:")
    for scenario in SCENARIOS.values():
        print(f"  {scenario.name:<24} {'/'.join(scenario.versions):<10} {scenario.doc}")
    return 0


def _mib(size: int | None) -> str:
    return "-" if size is None else f"{size / 2**20:.0f} MiB"


def _list() -> int:
    try:
        engine = ensure_engine()
    except DockerUnavailable as exc:
        print(f"note: {exc}", file=sys.stderr)
        engine = None
    try:
        rows = describe_images(engine)
    finally:
        if engine is not None:
            engine.stop()
    print(f"{'suite':<9} {'tag':<30} {'expected':<9} {'built':<6} {'found':<8} {'package':<20} {'size':>8}  built at")
    for row in rows:
        built = "?" if row["built"] is None else ("yes" if row["built"] else "no")
        print(f"{row['suite']:<9} {row['tag']:<30} {row['expected']:<9} {built:<6} {row['found'] or '-':<8} "
              f"{row['package'] or '-':<20} {_mib(row['size']):>8}  {row['created'] or '-'}")
    return 0


def _build(name: str, force: bool) -> int:
    try:
        specs = list(IMAGES.values()) if name == "all" else [spec_for(name)]
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    engine = ensure_engine()
    results = []
    try:
        for spec in specs:
            results.append(build_image(spec.suite, force=force, engine=engine))
    finally:
        engine.stop()
    print()
    print(f"{'suite':<9} {'tag':<30} {'mosquitto':<10} {'package':<20} {'size':>8} {'time':>7}")
    for result in results:
        took = "exists" if result.skipped else f"{result.seconds:.0f} s"
        print(f"{result.suite:<9} {result.tag:<30} {result.mosquitto_version:<10} {result.package_version:<20} "
              f"{_mib(result.size_bytes):>8} {took:>7}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            from .runner import run_broker
            if args.jobs < 1:
                print("error: --jobs must be at least 1", file=sys.stderr)
                return 2
            return run_broker(args.broker, clients=args.client, scenarios=args.scenario, jobs=args.jobs,
                              results=args.results or f"results/interop/{args.broker}.json",
                              capture_dir=args.capture_dir)
        if args.command == "list":
            return _list_all()
        if args.command == "images":
            if args.action == "list":
                return _list()
            return _build(args.suite, args.force)
    except (DockerUnavailable, ImageBuildError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
