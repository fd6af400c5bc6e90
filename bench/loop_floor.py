"""The floor under refbroker's memory per connection: its event loop and transports, and no MQTT state.

    python -m bench.loop_floor --port PORT [--host 127.0.0.1]

A server on the event loop refbroker runs on (uvloop's when it is installed, refbroker/server/loop.py)
whose protocol object keeps only its transport and answers a connection's first bytes (the CONNECT of
the capacity step's idle clients, MQTT 3.1.1) with CONNACK 0. What an idle connection costs here is
what the event loop and one transport cost; what refbroker costs beyond it is its own state. The
capacity table shows the figure beside refbroker's (capacity.py).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from refbroker.server import loop_kind, new_event_loop

CONNACK = b"\x20\x02\x00\x00"


class _Idle(asyncio.Protocol):
    __slots__ = ("transport", "answered")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.answered = False

    def data_received(self, data: bytes) -> None:
        if not self.answered:  # the first bytes: a CONNECT; nothing after it is looked at
            self.transport.write(CONNACK)
            self.answered = True


async def _serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    server = await loop.create_server(_Idle, host, port, backlog=1024)
    print(f"loop floor ({loop_kind()}) listening on {host}:{server.sockets[0].getsockname()[1]}", file=sys.stderr,
          flush=True)
    await stop.wait()
    server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loop_floor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    arguments = parser.parse_args(argv)
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(_serve(arguments.host, arguments.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
