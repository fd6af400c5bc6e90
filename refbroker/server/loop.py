"""Which asyncio event loop the broker runs on: uvloop's when it is installed, else asyncio's own.

uvloop (`pip install uvloop`, or the project's `fast` extra) implements the same asyncio API on
libuv, with its transports in C: the broker's code is the same either way, but each connection costs
less memory and each turn of the loop less time. `REFBROKER_EVENT_LOOP=asyncio` keeps asyncio's loop
even when uvloop is there (to compare the two, or to rule uvloop out).
"""

from __future__ import annotations

import asyncio
import os


def loop_kind() -> str:
    """"uvloop" or "asyncio": what `new_event_loop` will make."""
    if os.environ.get("REFBROKER_EVENT_LOOP", "").lower() == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def new_event_loop() -> asyncio.AbstractEventLoop:
    if loop_kind() == "uvloop":
        import uvloop
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()
