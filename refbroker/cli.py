"""`refbroker` on the command line, with mosquitto 2.x's flags.

    refbroker [-c config_file] [-d] [-h] [-p port]... [-q] [-v] [--test-config]

With no config file it listens on port 1883 of the loopback interface only and accepts anonymous
clients (mosquitto 2.0's "local only" mode). `-p` listens on the loopback interface too, and is
ignored (with a warning) when the config file defines listeners. `--test-config` checks the config
and exits 0 if it is usable, 1 if not. A mistake of the user's is one line on stderr, never a
traceback.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from . import __version__
from .config import ConfigError, load_config
from .core import Broker, Listener, Settings
from .core.settings import DEFAULT_PORT, LOG_TYPES
from .logs import LogSink
from .server import BrokerServer

USAGE = f"""refbroker version {__version__}

refbroker is an MQTT v5.0/v3.1.1/v3.1 reference broker, with mosquitto's command line.

Usage: refbroker [-c config_file] [-d] [-h] [-p port] [-q] [-v] [--test-config]

 -c : specify the broker config file.
 -d : put the broker into the background after starting.
 -h : display this help.
 -p : start the broker listening on the specified port (on the loopback interface).
      Can be given several times. Ignored when the config file defines listeners.
 -q : quiet mode - disable all logging types.
 -v : verbose mode - enable all logging types, including a line for every packet.
      This overrides any logging options given in the config file.
 --test-config : test the configuration file, then exit (0: valid, 1: not).
"""


class UsageError(Exception):
    pass


def _parse_arguments(argv: list[str]) -> dict:
    options = {"config": None, "daemon": False, "ports": [], "quiet": False, "verbose": False,
               "test_config": False, "help": False}
    arguments = iter(argv)
    for argument in arguments:
        if argument in ("-c", "--config-file"):
            options["config"] = next(arguments, None)
            if options["config"] is None:
                raise UsageError("-c argument given, but no config file specified.")
        elif argument in ("-d", "--daemon"):
            options["daemon"] = True
        elif argument in ("-h", "--help"):
            options["help"] = True
        elif argument in ("-p", "--port"):
            value = next(arguments, None)
            if value is None or not value.isdigit() or not 1 <= int(value) <= 65535:
                raise UsageError("Invalid port specified with -p.")
            options["ports"].append(int(value))
        elif argument in ("-q", "--quiet"):
            options["quiet"] = True
        elif argument in ("-v", "--verbose"):
            options["verbose"] = True
        elif argument == "--test-config":
            options["test_config"] = True
        else:
            raise UsageError(f"Unknown option '{argument}'.")
    return options


def _listeners(settings: Settings, ports: list[int], log: LogSink) -> list[Listener]:
    if settings.listeners:
        if ports:
            log("warning", "Warning: -p is ignored because the config file defines listeners.")
        return settings.listeners
    # No listener configured: loopback only (mosquitto 2.0)
    return [Listener(port, "127.0.0.1") for port in (ports or [DEFAULT_PORT])]


async def _serve(settings: Settings, listeners: list[Listener], log: LogSink) -> int:
    loop = asyncio.get_running_loop()
    broker = Broker(settings, now=loop.time(), log=log)
    server = BrokerServer(broker, loop)
    log("notice", f"refbroker version {__version__} starting")
    try:
        for listener in listeners:
            kind = ("websockets " if listener.protocol == "websockets" else "") + (
                "TLS " if listener.tls.enabled else "")
            for host, port in await server.listen_on(listener):
                log("notice", f"Opening {kind}listen socket on {host} port {port}.")
    except OSError as error:
        log("error", f"Error: {error.strerror or error} (port {listener.port}).")
        server.close()
        return 1
    for line in settings.ignored:
        log("debug", f"Config: {line}")
    log("notice", f"refbroker version {__version__} running")
    stop = asyncio.Event()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signal_number, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    await stop.wait()
    log("notice", f"refbroker version {__version__} terminating")
    server.close()
    return 0


def _daemonize() -> None:
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        options = _parse_arguments(argv)
    except UsageError as error:
        print(f"Error: {error}\n", file=sys.stderr)
        print(USAGE, file=sys.stderr)
        return 1
    if options["help"]:
        print(USAGE)
        return 0
    try:
        settings = load_config(options["config"]) if options["config"] else Settings()
    except ConfigError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    if options["test_config"]:
        print("Configuration file is valid." if options["config"] else "No configuration file: defaults are valid.")
        return 0
    if options["verbose"]:
        log_types = frozenset(LOG_TYPES)
    elif options["quiet"]:
        log_types = frozenset()
    else:
        log_types = settings.log_types
    log = LogSink(log_types, sys.stderr)
    listeners = _listeners(settings, options["ports"], log)
    if options["daemon"]:
        _daemonize()
    try:
        return asyncio.run(_serve(settings, listeners, log))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
