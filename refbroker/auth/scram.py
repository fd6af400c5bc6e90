"""SCRAM-SHA-256 (RFC 5802, RFC 7677): password authentication where the password never travels.

Both roles, sans-IO: each side turns the other side's message (bytes) into its next message.

    client                                          server
    client_first()            "n,,n=user,r=CNONCE"  ──►  receive_client_first()
    receive_server_first()  ◄──  "r=CNONCE SNONCE,s=SALT,i=4096"
                      "c=biws,r=...,p=PROOF"        ──►  receive_client_final()  (checks the proof)
    receive_server_final()  ◄──  "v=SERVER SIGNATURE"   (the client checks the server, too)

In MQTT 5.0 (section 4.12) the messages travel as Authentication Data: the first in CONNECT (or
in AUTH 0x19 to re-authenticate), the server's challenge in AUTH 0x18, the client's proof in AUTH
0x18, and the server's final message in CONNACK 0x00 (or AUTH 0x00 after re-authentication).

The server keeps no password, only per user a salt, an iteration count, StoredKey = H(ClientKey)
and ServerKey (`StoredCredentials`, written as in RFC 5803). Channel binding is not supported
(gs2 flag "n" or "y"); names are not SASLprep-normalised, so use ASCII names and passwords.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass

METHOD = "SCRAM-SHA-256"
HASH = "sha256"
DEFAULT_ITERATIONS = 4096  # the minimum RFC 7677 asks for


class ScramError(Exception):
    """The exchange failed: a malformed message, an unknown user, or a wrong proof or signature."""


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, HASH).digest()


def _h(data: bytes) -> bytes:
    return hashlib.new(HASH, data).digest()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ScramError(f"not base64: {text!r}") from None


def _nonce() -> str:
    return base64.b64encode(os.urandom(18)).decode("ascii")  # printable, never a ','


def _escape(name: str) -> str:
    return name.replace("=", "=3D").replace(",", "=2C")


def _unescape(name: str) -> str:
    if "=" in name.replace("=3D", "").replace("=2C", ""):
        raise ScramError("bad '=' escape in the user name")
    return name.replace("=2C", ",").replace("=3D", "=")


def _attributes(message: str, expected: str) -> dict[str, str]:
    """'r=abc,s=xyz' -> {'r': 'abc', 's': 'xyz'}, checking the attributes come in the expected order."""
    pairs = {}
    for part in message.split(","):
        key, separator, value = part.partition("=")
        if len(key) != 1 or not separator:
            raise ScramError(f"malformed attribute {part!r}")
        pairs[key] = value
    if "".join(pairs)[: len(expected)] != expected:
        raise ScramError(f"expected attributes {','.join(expected)}, got {message!r}")
    return pairs


def _decode(data: bytes | None) -> str:
    try:
        return (data or b"").decode("utf-8")
    except UnicodeDecodeError:
        raise ScramError("not UTF-8") from None


@dataclass(frozen=True)
class StoredCredentials:
    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    @classmethod
    def from_password(cls, password: str, salt: bytes | None = None,
                      iterations: int = DEFAULT_ITERATIONS) -> StoredCredentials:
        salt = os.urandom(16) if salt is None else salt
        salted = hashlib.pbkdf2_hmac(HASH, password.encode("utf-8"), salt, iterations)
        return cls(salt, iterations, _h(_hmac(salted, b"Client Key")), _hmac(salted, b"Server Key"))

    @classmethod
    def parse(cls, text: str) -> StoredCredentials:
        """RFC 5803 form: SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey> (base64)."""
        try:
            method, counted_salt, keys = text.split("$")
            iterations, salt = counted_salt.split(":")
            stored_key, server_key = keys.split(":")
            if method != METHOD or int(iterations) < 1:
                raise ValueError
            return cls(_unb64(salt), int(iterations), _unb64(stored_key), _unb64(server_key))
        except (ValueError, ScramError):
            raise ValueError(f"expected {METHOD}$iterations:salt$StoredKey:ServerKey") from None

    def __str__(self) -> str:
        return f"{METHOD}${self.iterations}:{_b64(self.salt)}${_b64(self.stored_key)}:{_b64(self.server_key)}"


class ScramClient:
    def __init__(self, username: str, password: str, *, nonce: str | None = None):
        self.username = username
        self.password = password
        self.nonce = nonce or _nonce()
        self._first_bare = f"n={_escape(username)},r={self.nonce}"
        self._server_signature: bytes | None = None

    def client_first(self) -> bytes:
        return ("n,," + self._first_bare).encode()  # gs2 header "n,,": no channel binding, no authzid

    def receive_server_first(self, data: bytes) -> bytes:
        """The server's challenge in; the client-final message (with the proof) out."""
        server_first = _decode(data)
        attributes = _attributes(server_first, "rsi")
        nonce, salt = attributes["r"], _unb64(attributes["s"])
        try:
            iterations = int(attributes["i"])
        except ValueError:
            raise ScramError("bad iteration count") from None
        if not nonce.startswith(self.nonce) or len(nonce) == len(self.nonce) or iterations < 1:
            raise ScramError("the server's nonce does not extend ours")
        without_proof = f"c={_b64(b'n,,')},r={nonce}"
        auth_message = f"{self._first_bare},{server_first},{without_proof}".encode()
        salted = hashlib.pbkdf2_hmac(HASH, self.password.encode("utf-8"), salt, iterations)
        client_key = _hmac(salted, b"Client Key")
        proof = _xor(client_key, _hmac(_h(client_key), auth_message))
        self._server_signature = _hmac(_hmac(salted, b"Server Key"), auth_message)
        return f"{without_proof},p={_b64(proof)}".encode()

    def receive_server_final(self, data: bytes) -> None:
        """Raises ScramError unless the server proved it knows our credentials too."""
        attributes = _attributes(_decode(data), "")
        if "e" in attributes:
            raise ScramError(f"the server refused: {attributes['e']}")
        if self._server_signature is None or "v" not in attributes or not hmac.compare_digest(
                _unb64(attributes["v"]), self._server_signature):
            raise ScramError("the server signature is wrong")


class ScramServer:
    """One exchange. `lookup(username)` gives the user's StoredCredentials, or None if unknown."""

    def __init__(self, lookup: Callable[[str], StoredCredentials | None], *, nonce: str | None = None,
                 secret: bytes | None = None):
        self._lookup = lookup
        self._nonce = nonce or _nonce()
        self._secret = secret or os.urandom(16)
        self.username: str | None = None
        self._credentials: StoredCredentials | None = None
        self._known = False
        self._client_first_bare = ""
        self._server_first = ""
        self._gs2_header = ""

    def receive_client_first(self, data: bytes | None) -> bytes:
        message = _decode(data)
        flag, _, rest = message.partition(",")
        authzid, _, bare = rest.partition(",")
        if flag not in ("n", "y"):
            raise ScramError("channel binding is not supported" if flag.startswith("p=") else
                             f"bad gs2 header in {message!r}")
        if authzid and not authzid.startswith("a="):
            raise ScramError(f"bad authorisation identity {authzid!r}")
        attributes = _attributes(bare, "nr")
        if not attributes["r"]:
            raise ScramError("empty client nonce")
        self.username = _unescape(attributes["n"])
        self._gs2_header = f"{flag},{authzid},"
        self._client_first_bare = bare
        credentials = self._lookup(self.username)
        self._known = credentials is not None
        if credentials is None:
            # An unknown user gets a plausible, stable challenge and fails at the proof, so the
            # exchange does not tell which names exist (RFC 5802 section 5.1).
            fake_salt = _hmac(self._secret, self.username.encode())[:16]
            credentials = StoredCredentials(fake_salt, DEFAULT_ITERATIONS, os.urandom(32), os.urandom(32))
        self._credentials = credentials
        nonce = attributes["r"] + self._nonce
        self._server_first = f"r={nonce},s={_b64(credentials.salt)},i={credentials.iterations}"
        return self._server_first.encode()

    def receive_client_final(self, data: bytes | None) -> bytes:
        """Checks the proof; returns the server-final message (our signature) or raises ScramError."""
        if self._credentials is None:
            raise ScramError("client-final before client-first")
        message = _decode(data)
        without_proof, separator, proof_text = message.rpartition(",p=")
        if not separator:
            raise ScramError("no proof in the client-final message")
        attributes = _attributes(without_proof, "cr")
        if _unb64(attributes["c"]) != self._gs2_header.encode():
            raise ScramError("channel binding data does not match the gs2 header")
        if attributes["r"] != self._server_first[2:].split(",")[0]:
            raise ScramError("the nonce changed")
        auth_message = f"{self._client_first_bare},{self._server_first},{without_proof}".encode()
        credentials = self._credentials
        proof = _unb64(proof_text)
        client_key = _xor(proof, _hmac(credentials.stored_key, auth_message))
        if not self._known or len(proof) != len(credentials.stored_key) or not hmac.compare_digest(
                _h(client_key), credentials.stored_key):
            raise ScramError("invalid proof")
        return f"v={_b64(_hmac(credentials.server_key, auth_message))}".encode()


def main(argv: list[str] | None = None) -> int:
    """`python -m refbroker.auth.scram USER PASSWORD`: print a line for the scram_users file."""
    import sys
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m refbroker.auth.scram USER PASSWORD", file=sys.stderr)
        return 1
    print(f"{argv[0]}:{StoredCredentials.from_password(argv[1])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
