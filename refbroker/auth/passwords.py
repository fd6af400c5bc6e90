"""mosquitto's password file: one `username:hash` per line, checked with hashlib.

The two hash formats of mosquitto 2.x (written by `mosquitto_passwd`):

    alice:$7$101$<salt base64>$<hash base64>   PBKDF2-HMAC-SHA512, 101 iterations (the 2.x default)
    carol:$6$<salt base64>$<hash base64>       SHA-512 of password then salt (`mosquitto_passwd -H sha512`,
                                               the only format of mosquitto 1.x)

A plain text password is not accepted (mosquitto refuses it too, and `mosquitto_passwd -U` converts
such a file). Blank lines and lines starting with '#' are skipped. Comparisons are constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass

from .errors import AuthFileError, read_auth_file

PBKDF2_SHA512, SHA512 = "7", "6"


@dataclass(frozen=True)
class PasswordHash:
    kind: str          # "7" or "6"
    salt: bytes
    digest: bytes
    iterations: int = 0  # PBKDF2 only

    @classmethod
    def parse(cls, text: str) -> PasswordHash:
        """'$7$101$salt$hash' or '$6$salt$hash'; ValueError if it is neither."""
        parts = text.split("$")
        try:
            if len(parts) == 5 and parts[0] == "" and parts[1] == PBKDF2_SHA512:
                iterations = int(parts[2])
                if iterations < 1:
                    raise ValueError("the iteration count must be positive")
                return cls(PBKDF2_SHA512, _b64(parts[3]), _b64(parts[4]), iterations)
            if len(parts) == 4 and parts[0] == "" and parts[1] == SHA512:
                return cls(SHA512, _b64(parts[2]), _b64(parts[3]))
        except (binascii.Error, ValueError) as error:
            raise ValueError(f"bad password hash: {error}") from None
        raise ValueError("expected $7$iterations$salt$hash or $6$salt$hash")

    @classmethod
    def create(cls, password: str, *, iterations: int = 101, salt: bytes | None = None) -> PasswordHash:
        """A new $7$ hash, as `mosquitto_passwd` makes it (12 random bytes of salt)."""
        salt = os.urandom(12) if salt is None else salt
        return cls(PBKDF2_SHA512, salt, hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations),
                   iterations)

    def matches(self, password: bytes) -> bool:
        if self.kind == PBKDF2_SHA512:
            candidate = hashlib.pbkdf2_hmac("sha512", password, self.salt, self.iterations)
        else:
            candidate = hashlib.sha512(password + self.salt).digest()
        return hmac.compare_digest(candidate, self.digest)

    def __str__(self) -> str:
        salt, digest = base64.b64encode(self.salt).decode(), base64.b64encode(self.digest).decode()
        if self.kind == PBKDF2_SHA512:
            return f"${self.kind}${self.iterations}${salt}${digest}"
        return f"${self.kind}${salt}${digest}"


def _b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


class PasswordFile:
    def __init__(self, users: dict[str, PasswordHash] | None = None):
        self.users = dict(users or {})

    @classmethod
    def parse(cls, text: str, path: str = "<password_file>") -> PasswordFile:
        users = {}
        for number, line in enumerate(text.splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            username, separator, hashed = line.partition(":")
            if not separator or not username:
                raise AuthFileError(f"{path}:{number}: expected username:hash")
            try:
                users[username] = PasswordHash.parse(hashed)
            except ValueError as error:
                raise AuthFileError(f"{path}:{number}: {error} (user {username!r})") from None
        return cls(users)

    @classmethod
    def load(cls, path: str | os.PathLike) -> PasswordFile:
        return cls.parse(read_auth_file(path), str(path))

    def check(self, username: str, password: bytes | None) -> bool:
        """True if the user exists and the password is theirs. No password never matches."""
        hashed = self.users.get(username)
        if hashed is None or password is None:
            return False
        return hashed.matches(password)

