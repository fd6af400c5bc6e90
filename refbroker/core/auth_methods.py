"""Enhanced authentication (5.0 section 4.12): the methods the broker offers for the AUTH exchange.

A client names a method in CONNECT (Authentication Method) and may add Authentication Data. The
broker then runs an *exchange* of that method: each piece of data from the client (from CONNECT,
then from each AUTH 0x18) goes into `step`, which answers either "continue" with data for an AUTH
0x18 [MQTT-4.12.0-2], or "done" with the final data for CONNACK 0x00 (or AUTH 0x00 when the client
re-authenticates with AUTH 0x19), or raises `AuthenticationFailed`. Where each connection is in
its exchange is auth_exchange.py's business; this module only knows the methods.

Built in: SCRAM-SHA-256 (auth/scram.py), offered when a `scram_users` file is configured.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..auth.scram import METHOD as SCRAM_SHA_256
from ..auth.scram import ScramError, ScramServer
from .settings import Settings


class AuthenticationFailed(Exception):
    """The client did not prove who it is; str() says why (it goes into the Reason String)."""


@dataclass(frozen=True)
class Step:
    done: bool                # True: authenticated; False: send AUTH 0x18 and wait for the client
    data: bytes | None        # Authentication Data for the AUTH 0x18, or for CONNACK / AUTH 0x00
    username: str | None = None  # once done: who the client is


class Exchange(Protocol):
    def step(self, data: bytes | None) -> Step: ...


class ScramExchange:
    """SCRAM-SHA-256 in two rounds: client-first (CONNECT) -> server-first (AUTH 0x18),
    client-final (AUTH 0x18) -> server-final (CONNACK 0x00)."""

    def __init__(self, server: ScramServer):
        self._server = server
        self._round = 0

    def step(self, data: bytes | None) -> Step:
        self._round += 1
        try:
            if self._round == 1:
                return Step(False, self._server.receive_client_first(data))
            if self._round == 2:
                return Step(True, self._server.receive_client_final(data), self._server.username)
        except ScramError as error:
            raise AuthenticationFailed(f"{SCRAM_SHA_256}: {error}") from None
        raise AuthenticationFailed(f"{SCRAM_SHA_256}: the exchange is already over")


def available_methods(settings: Settings) -> dict[str, Callable[[], Exchange]]:
    """Authentication Method name -> a factory of fresh exchanges."""
    methods: dict[str, Callable[[], Exchange]] = {}
    users = settings.scram_users
    if users is not None:
        methods[SCRAM_SHA_256] = lambda: ScramExchange(ScramServer(users.get))
    return methods
