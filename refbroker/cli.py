"""`refbroker` on the command line, with mosquitto 2.x's flags and signals.

    refbroker [-c config_file] [-d] [-h] [-p port]... [-q] [-v] [--test-config]

With no config file it listens on port 1883 of the loopback interface only and accepts anonymous
clients (mosquitto 2.0's "local only" mode). `-p` listens on the loopback interface too, and is
ignored (with a warning) when the config file defines listeners. `--test-config` checks the config
and exits 0 if it is usable, 1 if not. A mistake of the user's is one line on stderr, never a
traceback.

Start: config, log destinations, -d (daemon), pid_file, the persistence database (restored), the
listeners, then `user` (privileges dropped). Signals, as mosquitto:

    SIGINT, SIGTERM   stop (saving the state if persistence is on)
    SIGHUP            read the config file again: password, ACL and SCRAM files, log settings, limits;
                      the TLS listeners' certificates; the log file is reopened. Clients stay connected.
    SIGUSR1           save the state now (persistence)
    SIGUSR2           write the subscription tree to the log
"""

from __future__ import annotations

import asyncio
import signal
import sys

from . import __version__
from .cli_hints import suggestion_text
from .config import ConfigError, load_config
from .core import Broker, Listener, Settings
from .core.settings import DEFAULT_PORT, LOG_TYPES
from .host import BrokerHost
from .logs import LogFileError, LogSink
from .persistence import Persistence, PersistenceError
from .process import (
    ProcessError,
    daemonize,
    drop_privileges,
    memory_usage,
    remove_pid_file,
    tune_garbage_collector,
    write_pid_file,
)
from .server import BrokerServer, new_event_loop

USAGE = f"""refbroker version {__version__}

refbroker is an MQTT v5.0/v3.1.1/v3.1 reference broker, with mosquitto's command line.

Usage: refbroker [-c config_file] [-d] [-h] [-p port] [-q] [-v] [--test-config]
       refbroker --test-server [--base-port N] [--out DIR] [-v]   (--test-server --help for more)

 -c : specify the broker config file.
 -d : put the broker into the background after starting.
 -h : display this help.
 -p : start the broker listening on the specified port (on the loopback interface).
      Can be given several times. Ignored when the config file defines listeners.
 -q : quiet mode - disable all logging types.
 -v : verbose mode - enable all logging types, including a line for every packet.
      This overrides any logging options given in the config file.
 --test-config : test the configuration file, then exit (0: valid, 1: not).

Signals: SIGHUP reloads the configuration (password, ACL and TLS files, logging) and reopens the
log file; SIGUSR1 saves the persistence database; SIGUSR2 logs the subscription tree.
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
            known = ("--config-file", "--daemon", "--help", "--port", "--quiet", "--verbose", "--test-config")
            raise UsageError(f"Unknown option '{argument}'.{suggestion_text(argument, known)}")
    return options


def _listeners(settings: Settings, ports: list[int], log: LogSink | None = None) -> list[Listener]:
    if settings.listeners:
        if ports and log is not None:
            log("warning", "Warning: -p is ignored because the config file defines listeners.")
        return settings.listeners
    # No listener configured: loopback only (mosquitto 2.0)
    return [Listener(port, "127.0.0.1") for port in (ports or [DEFAULT_PORT])]


def _log_types(options: dict, settings: Settings) -> frozenset[str] | None:
    """-v and -q override log_type; None: the config's."""
    if options["verbose"]:
        return frozenset(LOG_TYPES)
    if options["quiet"]:
        return frozenset()
    return None


class _Running:
    """The running broker, and what the signal handlers act on."""

    def __init__(self, options: dict, settings: Settings, log: LogSink, loop: asyncio.AbstractEventLoop):
        self.options = options
        self.log = log
        self.loop = loop
        self.broker = Broker(settings, now=loop.time(), log=log, memory_usage=memory_usage)
        persistence = Persistence(settings, log, self.broker.version) if settings.persistence else None
        self.host = BrokerHost(self.broker, log, persistence, on_fatal=self.fail)
        self.server = BrokerServer(self.host, loop, log)
        self.stop = asyncio.Event()
        self.exit_code = 0

    def fail(self, why: str) -> None:
        self.exit_code = 1
        self.stop.set()

    def reload(self) -> None:
        """SIGHUP: read the config file again; apply what can change while running."""
        log, path = self.log, self.options["config"]
        log("notice", "Reloading config.")
        if path is None:
            log.reopen()
            return
        try:
            new = load_config(path)
        except ConfigError as error:
            log("error", f"Error: {error} (the running configuration is kept)")
            return
        self.server.perform(self.host.reload(new, self.loop.time()))
        try:
            log.configure(self.broker.settings, _log_types(self.options, new))
            log.reopen()
            self.broker.log_packets(log.wants_debug)
        except LogFileError as error:
            print(f"Error: {error}", file=sys.stderr)
        for error in self.server.reload_certificates(_listeners(new, self.options["ports"])):
            log("error", error)

    def save(self) -> None:
        """SIGUSR1"""
        self.host.save(self.loop.time())

    def subscription_tree(self) -> None:
        """SIGUSR2"""
        self.host.log_subscription_tree()


async def _serve(options: dict, settings: Settings, listeners: list[Listener], log: LogSink) -> int:
    loop = asyncio.get_running_loop()
    running = _Running(options, settings, log, loop)
    log("notice", f"refbroker version {__version__} starting")
    # The handlers come first: a SIGTERM that arrives once a port is reachable, but before the start has
    # finished (privileges dropped, ...), must still stop the broker cleanly, with its state saved
    handlers = {signal.SIGINT: running.stop.set, signal.SIGTERM: running.stop.set, signal.SIGHUP: running.reload,
                signal.SIGUSR1: running.save, signal.SIGUSR2: running.subscription_tree}
    for signal_number, handler in handlers.items():
        try:
            loop.add_signal_handler(signal_number, handler)
        except (NotImplementedError, RuntimeError):
            pass
    if options["config"]:
        log("notice", f"Config loaded from {options['config']}.")
    persistence = running.host.persistence
    if persistence is not None:
        try:
            persistence.open(running.broker, loop.time())
        except PersistenceError as error:
            log("error", f"Error: {error}")
            return 1
    server = running.server
    try:
        for listener in listeners:
            kind = ("websockets " if listener.protocol == "websockets" else "") + (
                "TLS " if listener.tls.enabled else "")
            for host, port in await server.listen_on(listener):
                if listener.unix_socket is not None:
                    log("notice", f"Opening {kind}unix listen socket on path {host}.")
                else:
                    log("notice", f"Opening {kind}listen socket on {host} port {port}.")
    except OSError as error:
        log("error", f"Error: {error.strerror or error} ({listener.unix_socket or f'port {listener.port}'}).")
        server.close()
        running.host.close(loop.time())
        return 1
    owned = [persistence.path + suffix for suffix in ("", "-wal", "-shm")] if persistence is not None else []
    try:
        warning = drop_privileges(settings.user, owned)
    except ProcessError as error:
        log("error", str(error))
        server.close()
        running.host.close(loop.time())
        return 1
    if warning:
        log("warning", warning)
    for line in settings.ignored:
        log("warning", f"Config: {line}")
    log("notice", f"refbroker version {__version__} running")
    await running.stop.wait()
    log("notice", f"refbroker version {__version__} terminating")
    running.host.close(loop.time())
    server.close()
    return running.exit_code


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--test-server"]:
        # A local test.mosquitto.org (refbroker/testserver): writes its files, then runs with them
        from .testserver.cli import prepare
        prepared = prepare(argv[1:])
        if isinstance(prepared, int):
            return prepared
        argv = prepared
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
    log = LogSink(settings.log_types, sys.stderr)
    try:
        log.configure(settings, _log_types(options, settings))
    except LogFileError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    listeners = _listeners(settings, options["ports"], log)
    if options["daemon"]:
        daemonize()
    try:
        if settings.pid_file:
            write_pid_file(settings.pid_file)
    except ProcessError as error:
        log("error", str(error))
        return 1
    tune_garbage_collector()
    try:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:  # uvloop's loop when installed
            return runner.run(_serve(options, settings, listeners, log))
    except KeyboardInterrupt:
        return 0
    finally:
        if settings.pid_file:
            remove_pid_file(settings.pid_file)
        log.close()

if __name__ == "__main__":
    sys.exit(main())
