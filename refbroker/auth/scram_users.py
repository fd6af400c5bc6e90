"""The `scram_users` file: who may log in with SCRAM-SHA-256, one `user:secret` per line.

    alice:SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>   stored keys (RFC 5803), no password kept
    bob:pencil                                                  a plain password (for tests and teaching)

Why not the password_file? SCRAM-SHA-256 needs PBKDF2-HMAC-SHA256 of the password with the salt
it announces; mosquitto's password file keeps PBKDF2-SHA512 (or SHA-512) hashes, from which no
SCRAM key can be derived. `python -m refbroker.auth.scram USER PASSWORD` prints a stored-keys line.
Plain passwords are turned into stored keys (random salt, 4096 iterations) when the file is read.
"""

from __future__ import annotations

import os

from .errors import AuthFileError, read_auth_file
from .scram import METHOD, StoredCredentials


class ScramUsers:
    def __init__(self, users: dict[str, StoredCredentials] | None = None):
        self.users = dict(users or {})

    @classmethod
    def parse(cls, text: str, path: str = "<scram_users>") -> ScramUsers:
        users = {}
        for number, line in enumerate(text.splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            username, separator, secret = line.partition(":")
            if not separator or not username or not secret:
                raise AuthFileError(f"{path}:{number}: expected user:password or user:{METHOD}$...")
            if secret.startswith(METHOD + "$"):
                try:
                    users[username] = StoredCredentials.parse(secret)
                except ValueError as error:
                    raise AuthFileError(f"{path}:{number}: {error}") from None
            else:
                users[username] = StoredCredentials.from_password(secret)
        return cls(users)

    @classmethod
    def load(cls, path: str | os.PathLike) -> ScramUsers:
        return cls.parse(read_auth_file(path), str(path))

    @classmethod
    def from_passwords(cls, passwords: dict[str, str], iterations: int = 4096) -> ScramUsers:
        return cls({user: StoredCredentials.from_password(password, iterations=iterations)
                    for user, password in passwords.items()})

    def get(self, username: str) -> StoredCredentials | None:
        return self.users.get(username)
