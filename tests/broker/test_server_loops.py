"""The asyncio shell on both event loops it may run on: asyncio's own and uvloop's (when installed).

uvloop's `call_at` with a time already past returns a plain Handle (no `when()`), which once turned
every later write into a fatal transport error; the server keeps its timer's time itself.
"""

from __future__ import annotations

import asyncio

import pytest

from refbroker.core import Broker, Settings
from refbroker.core.timers import SysDue
from refbroker.server import BrokerServer, loop_kind, new_event_loop

LOOPS = ["asyncio", "uvloop"]


@pytest.fixture(params=LOOPS)
def loop(request, monkeypatch):
    if request.param == "uvloop":
        pytest.importorskip("uvloop", reason="uvloop not installed: pip install uvloop (the 'fast' extra)")
        monkeypatch.delenv("REFBROKER_EVENT_LOOP", raising=False)
    else:
        monkeypatch.setenv("REFBROKER_EVENT_LOOP", "asyncio")
    assert loop_kind() == request.param
    loop = new_event_loop()
    yield loop
    loop.close()


def test_a_deadline_already_past_is_scheduled_and_rescheduled_without_error(loop):
    broker = Broker(Settings(sys_interval=10), now=loop.time())
    server = BrokerServer(broker, loop)
    broker.ctx.timers.schedule(loop.time() - 5, SysDue())  # overdue
    server.perform([])
    server.perform([])  # compares with the pending timer's time
    loop.run_until_complete(asyncio.sleep(0.05))  # the overdue timer has run: $SYS published, next one set
    server.perform([])
    assert broker.next_deadline() > loop.time()
    server.close()


def test_a_client_connects_and_is_answered_on_either_loop(loop):
    from refbroker.protocol import Connack, Connect, StreamDecoder

    async def exchange(port: int) -> object:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(Connect(client_id="loop").encode(4))
        data = await asyncio.wait_for(reader.read(100), 5)
        writer.close()
        return StreamDecoder(4).feed(data)[0]

    broker = Broker(Settings(sys_interval=1), now=loop.time())
    server = BrokerServer(broker, loop)
    ((_, port),) = loop.run_until_complete(server.listen("127.0.0.1", 0))
    answer = loop.run_until_complete(exchange(port))
    assert isinstance(answer, Connack) and answer.reason_code == 0
    server.close()
