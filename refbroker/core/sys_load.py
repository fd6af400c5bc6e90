"""The $SYS load averages: how many messages, bytes, publishes, connections and sockets per minute,
smoothed over 1, 5 and 15 minutes (mosquitto's $SYS/broker/load/...).

Every `sys_interval` the broker passes the current time and its running counters. From the
counters' growth since the previous update we get a rate per minute, and each average moves
towards it with an exponential moving average whose time constant is its window:

    weight = exp(-elapsed / window)
    average = average * weight + rate * (1 - weight)

So a steady rate is reached by all three after a while, the 1 minute one fastest. Time is passed
in, never read, as everywhere in core/.
"""

from __future__ import annotations

import math

from .counters import Counters

WINDOWS = {"1min": 60.0, "5min": 300.0, "15min": 900.0}

# $SYS/broker/load/<name> -> the counter whose rate it shows (names as mosquitto(8) lists them)
METRICS = {
    "messages/received": "messages_received",
    "messages/sent": "messages_sent",
    "bytes/received": "bytes_received",
    "bytes/sent": "bytes_sent",
    "publish/received": "publish_received",
    "publish/sent": "publish_sent",
    "publish/dropped": "publish_dropped",
    "connections": "connects",
    "sockets": "connections_total",
}


class LoadAverages:
    def __init__(self, now: float):
        self._last_time = now
        self._last: dict[str, int] = {name: 0 for name in METRICS}
        self.averages: dict[str, dict[str, float]] = {name: dict.fromkeys(WINDOWS, 0.0) for name in METRICS}

    def update(self, now: float, counters: Counters) -> None:
        elapsed = now - self._last_time
        if elapsed <= 0:
            return
        self._last_time = now
        for name, counter in METRICS.items():
            value = getattr(counters, counter)
            rate = (value - self._last[name]) * 60.0 / elapsed  # per minute
            self._last[name] = value
            for window, seconds in WINDOWS.items():
                weight = math.exp(-elapsed / seconds)
                self.averages[name][window] = self.averages[name][window] * weight + rate * (1.0 - weight)

    def values(self) -> dict[str, str]:
        """'load/messages/received/1min' -> '12.34', as mosquitto formats them."""
        return {f"load/{name}/{window}": f"{average:.2f}"
                for name, windows in self.averages.items() for window, average in windows.items()}
