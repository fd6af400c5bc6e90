"""The one error of this package, a line of a password, ACL or SCRAM users file we cannot use, and
reading such a file with that error for every way it can fail."""

from __future__ import annotations

import os


class AuthFileError(ValueError):
    """str() is 'file:line: what is wrong', like config.ConfigError."""


def read_auth_file(path: str | os.PathLike) -> str:
    """The text of a password, ACL or SCRAM users file; AuthFileError if it cannot be read."""
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except OSError as error:
        raise AuthFileError(f"{path}: cannot read ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise AuthFileError(f"{path}: not UTF-8 text") from None
