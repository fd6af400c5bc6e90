"""Run refbroker inside another Python program, e.g. as the default target of the conformance suite.

    broker = EmbeddedBroker()          # 127.0.0.1, a free port
    broker.start()                     # returns once it is listening
    ... connect to ("127.0.0.1", broker.port) ...
    broker.stop()

The asyncio server runs in a background thread with its own event loop. `config` may be None, a
`Settings`, the path of a mosquitto.conf file, or a mapping of mosquitto.conf keys to values. The
broker listens on `host`/`port` (plain MQTT over TCP) and, unless the config says otherwise,
accepts anonymous clients. Listeners in the config (TLS, WebSocket ...) are opened *as well*;
`listener 0` picks a free port, and `listener_ports` lists the ports in config order.

It runs the broker the way the command line does (refbroker/host.py): with `persistence true` the
saved state is restored by `start` and saved by `stop`; `log_dest topic` publishes the log.
`save()` saves now, like SIGUSR1.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Mapping

from . import __version__
from .config import load_config, settings_from_mapping
from .core import Broker, Settings
from .core.settings import LOG_TYPES
from .host import BrokerHost
from .logs import LogSink
from .persistence import Persistence
from .process import memory_usage
from .server import BrokerServer, new_event_loop


def _settings_from(config: Settings | str | os.PathLike | Mapping | None) -> Settings:
    if config is None:
        return Settings()
    if isinstance(config, Settings):
        return config
    if isinstance(config, Mapping):
        return settings_from_mapping(config)
    return load_config(config)


class EmbeddedBroker:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, config=None, *, verbose: bool = True):
        self.host = host
        self.port = port
        self.settings = _settings_from(config)
        if self.settings.allow_anonymous is None:
            self.settings.allow_anonymous = True
        self.version = f"refbroker {__version__}"
        # verbose: keep mosquitto's -v log (every packet) for logs(); a conformance report shows it
        self._log = LogSink(self.settings.log_types, keep=True)
        self._log.configure(self.settings, frozenset(LOG_TYPES) if verbose else None)
        self._host: BrokerHost | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: BrokerServer | None = None
        self.listener_ports: list[int] = []
        self._started = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> EmbeddedBroker:
        if self._thread is not None:
            raise RuntimeError("this EmbeddedBroker is already started")
        self._thread = threading.Thread(target=self._run, name=f"refbroker:{self.port}", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise self._error
        return self

    def _run(self) -> None:
        loop = self._loop = new_event_loop()
        try:
            broker = Broker(self.settings, now=loop.time(), log=self._log, memory_usage=memory_usage)
            persistence = None
            if self.settings.persistence:
                persistence = Persistence(self.settings, self._log, broker.version)
                persistence.open(broker, loop.time())
            host = self._host = BrokerHost(broker, self._log, persistence)
            self._server = BrokerServer(host, loop, self._log)
            addresses = loop.run_until_complete(self._server.listen(self.host, self.port))
            self.port = addresses[0][1]
            for listener in self.settings.listeners:
                self.listener_ports.append(loop.run_until_complete(self._server.listen_on(listener))[0][1])
            self._log("notice", f"{broker.version} running on {self.host}:{self.port}")
        except BaseException as error:  # reported by start()
            self._error = error
            self._started.set()
            if self._server is not None:
                self._server.close()
            loop.close()
            return
        self._started.set()
        try:
            loop.run_forever()
        finally:
            self._host.close(loop.time())
            self._server.close()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()
            self._log.close()

    def save(self) -> None:
        """Save the state now (as SIGUSR1 does); returns once it is saved."""
        if self._loop is None or self._host is None:
            return
        done = threading.Event()

        def save() -> None:
            try:
                self._host.save(self._loop.time())
            finally:
                done.set()
        self._loop.call_soon_threadsafe(save)
        done.wait(10)

    def stop(self) -> None:
        if self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = None

    def logs(self) -> str:
        return self._log.text()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
