"""A recording TCP proxy: listen here, forward to a broker, keep every byte of every session.

No root and no capture library needed: clients connect to the proxy instead of the broker, and the
proxy records what each side sent, with timestamps, while passing it through unchanged.

API (everything else in this module is private)::

    from pcap.proxy import RecordingProxy

    with RecordingProxy(("127.0.0.1", 1883)) as proxy:      # starts on a free local port
        host, port = proxy.address                         # point the client here
        ...                                                # run the client
        proxy.wait_closed(timeout=2.0)                     # optional: let open sessions finish
        sessions = proxy.sessions()                        # snapshots: list[pcap.session.Session]
        proxy.write_pcapng("run.pcapng")                   # Wireshark opens it
    # leaving the block stops the proxy: listener closed, connections closed, thread joined

    RecordingProxy(target, listen_host="127.0.0.1", listen_port=0, connect_timeout=5.0)
        target                (host, port) of the broker to forward to
        listen_port           0 = a free port chosen by the OS (read it from `address`)
    .start() -> self          start the listener (a daemon thread running an asyncio loop)
    .stop()                   stop everything; idempotent; the recorded sessions stay readable
    .address                  (host, port) to connect clients to
    .sessions()               copies of every session so far (open ones included), oldest first
    .take_sessions()          the same, and forget them (one capture per test with one proxy; a session
                              still open is returned as it is so far, and what it carries later is dropped)
    .wait_closed(timeout)     True once every session so far has ended on both sides
    .write_pcapng(path, sessions=None, server_port=None) -> Path
                              write the sessions (default: all) as pcapng (see pcap.pcapng)

A `Session` (pcap.session) has `client_bytes`, `broker_bytes`, `chunks` (time, direction, data) and
`packets()`: the decoded MQTT packets of both directions in time order, from the project's codec.

Closing follows the peers: when one side closes, the proxy closes its write side towards the other
(half-close), and the session ends when both sides have closed (or on a reset). If the broker cannot
be reached, the client's connection is closed at once and the session carries a note saying why.
"""

from __future__ import annotations

import asyncio
import copy
import os
import socket
import threading
import time
from pathlib import Path

from .pcapng import write_pcapng
from .session import BROKER, CLIENT, Chunk, Direction, Session

__all__ = ["RecordingProxy"]

_READ_SIZE = 65536


class RecordingProxy:
    def __init__(self, target: tuple[str, int], *, listen_host: str = "127.0.0.1", listen_port: int = 0,
                 connect_timeout: float = 5.0):
        self.target = (target[0], int(target[1]))
        self._listen = (listen_host, listen_port)
        self._connect_timeout = connect_timeout
        self._lock = threading.Lock()  # guards _sessions and _open (the loop thread writes, callers read)
        self._sessions: list[Session] = []
        self._open: set[int] = set()  # numbers of sessions not yet ended
        self._next_number = 1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task] = set()
        self._address: tuple[str, int] | None = None

    # ------------------------------------------------------------------------------ public API

    @property
    def address(self) -> tuple[str, int]:
        if self._address is None:
            raise RuntimeError("the proxy is not started")
        return self._address

    def start(self) -> "RecordingProxy":
        if self._thread is not None:
            raise RuntimeError("the proxy is already started")
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._handle, self._listen[0], self._listen[1]))
                self._address = self._server.sockets[0].getsockname()[:2]
            except BaseException as error:  # reported to start()'s caller
                failure.append(error)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._shutdown())
                loop.close()

        self._thread = threading.Thread(target=run, name=f"pcap-proxy->{self.target[0]}:{self.target[1]}",
                                        daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise OSError(f"recording proxy cannot listen on {self._listen[0]}:{self._listen[1]}: {failure[0]}")
        return self

    def stop(self) -> None:
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        if loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> "RecordingProxy":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def sessions(self) -> list[Session]:
        with self._lock:
            return [self._snapshot(session) for session in self._sessions]

    def take_sessions(self) -> list[Session]:
        with self._lock:
            taken = [self._snapshot(session) for session in self._sessions]
            self._sessions = []
            return taken

    def wait_closed(self, timeout: float = 2.0) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if not self._open:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def write_pcapng(self, path: str | os.PathLike, sessions: list[Session] | None = None,
                     server_port: int | None = None) -> Path:
        return write_pcapng(self.sessions() if sessions is None else sessions, path, server_port)

    # ------------------------------------------------------------------------------ loop thread

    @staticmethod
    def _snapshot(session: Session) -> Session:
        clone = copy.copy(session)
        clone.chunks = list(session.chunks)
        clone.notes = list(session.notes)
        clone.side_closed = dict(session.side_closed)
        return clone

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            await self._relay(client_reader, client_writer)
        finally:
            self._tasks.discard(task)

    async def _relay(self, client_reader, client_writer) -> None:
        peer = client_writer.get_extra_info("peername")[:2]
        with self._lock:
            session = Session(self._next_number, client=peer, broker=self.target, opened=time.time())
            self._next_number += 1
            self._sessions.append(session)
            self._open.add(session.number)
        _nodelay(client_writer)
        try:
            broker_reader, broker_writer = await asyncio.wait_for(
                asyncio.open_connection(*self.target), self._connect_timeout)
        except (OSError, asyncio.TimeoutError) as error:
            self._end(session, f"cannot connect to the broker {self.target[0]}:{self.target[1]}: "
                               f"{str(error) or 'timeout'}", closed_by=BROKER)
            client_writer.close()
            return
        _nodelay(broker_writer)
        real_broker = broker_writer.get_extra_info("peername")
        if real_broker:
            session.broker = real_broker[:2]  # the resolved address, for the pcap's IP header
        first_close: list[Direction] = []
        try:
            await asyncio.gather(self._pump(session, CLIENT, client_reader, broker_writer, first_close),
                                 self._pump(session, BROKER, broker_reader, client_writer, first_close))
        finally:
            for writer in (client_writer, broker_writer):
                writer.close()
            self._end(session, None, closed_by=first_close[0] if first_close else None)

    async def _pump(self, session: Session, direction: Direction, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter, first_close: list[Direction]) -> None:
        try:
            while True:
                data = await reader.read(_READ_SIZE)
                if not data:
                    break
                with self._lock:
                    session.chunks.append(Chunk(time.time(), direction, data))
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass  # a reset counts as a close
        with self._lock:
            session.side_closed.setdefault(direction, time.time())
        if not first_close:
            first_close.append(direction)
        try:
            if writer.can_write_eof():
                writer.write_eof()
            else:
                writer.close()
        except (ConnectionError, OSError):
            pass
        if direction is BROKER or first_close[0] is BROKER:
            # The broker closed (or reset): the client will get nothing more; do not wait for it.
            writer.close()

    def _end(self, session: Session, note: str | None, closed_by: Direction | None) -> None:
        with self._lock:
            if note:
                session.notes.append(note)
            if session.closed is None:
                session.closed = time.time()
                session.closed_by = closed_by
                if session.side_closed:  # the side whose end of stream came first
                    session.closed_by = min(session.side_closed, key=session.side_closed.get)
            self._open.discard(session.number)

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()


def _nodelay(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
