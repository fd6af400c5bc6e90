"""The driver process for the Python client libraries: `python -m interop.clients.python_driver LIBRARY`.

Reads the line protocol (interop/clients/driver.py) on stdin and runs each request against an adapter
of the chosen library (paho-mqtt, gmqtt, aiomqtt, amqtt). Adapters are async classes with one method
per operation; blocking libraries run in threads. Errors of the library become `{"ok": false}`
answers; the process itself only ends at end of input (or when it is killed).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import traceback

ADAPTERS = {
    "paho-mqtt": "interop.clients.adapters.paho",
    "gmqtt": "interop.clients.adapters.gmqtt",
    "aiomqtt": "interop.clients.adapters.aiomqtt",
    "amqtt": "interop.clients.adapters.amqtt",
}


class Inbox:
    """Messages received on one connection, waited for by `receive`."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.changed = asyncio.Event()

    def put(self, message: dict) -> None:
        self.messages.append(message)
        self.changed.set()

    async def take(self, count: int, timeout: float) -> list[dict]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.messages) < count:
            left = deadline - loop.time()
            if left <= 0:
                break
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except asyncio.TimeoutError:
                break
        taken, self.messages = self.messages[:count], self.messages[count:]
        return taken


def text(payload) -> str:
    if isinstance(payload, (bytes, bytearray)):
        return bytes(payload).decode("utf-8", errors="replace")
    return "" if payload is None else str(payload)


async def serve(adapter) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out = sys.stdout
    while True:
        line = await reader.readline()
        if not line:
            break
        try:
            request = json.loads(line)
        except ValueError:
            continue
        request_id = request.pop("id", None)
        op = request.pop("op", "")
        try:
            handler = getattr(adapter, "op_" + op)
        except AttributeError:
            answer = {"ok": False, "error": f"unknown operation {op!r}"}
        else:
            try:
                result = await handler(**request)
                answer = {"ok": True, **(result or {})}
            except Exception as exc:  # noqa: BLE001 - every library error is an answer, not a crash
                detail = f"{type(exc).__name__}: {exc}"
                print(traceback.format_exc(), file=sys.stderr, flush=True)
                answer = {"ok": False, "error": detail}
        answer["id"] = request_id
        out.write(json.dumps(answer, default=str) + "\n")
        out.flush()
    await adapter.op_reset()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] not in ADAPTERS:
        print(f"usage: python -m interop.clients.python_driver {{{','.join(ADAPTERS)}}}", file=sys.stderr)
        return 2
    module = importlib.import_module(ADAPTERS[argv[0]])
    asyncio.run(serve(module.Adapter()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
