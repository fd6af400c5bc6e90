"""Who may connect and what they may do: mosquitto's password and ACL files, and SCRAM.

    passwords.py    mosquitto's password_file: `user:$7$...` (PBKDF2-SHA512) and `user:$6$...` (SHA-512)
    acl.py          mosquitto's acl_file: `user`, `topic [read|write|readwrite|deny]`, `pattern` with %c/%u
    scram.py        SCRAM-SHA-256 (RFC 5802 / RFC 7677), client and server, sans-IO
    scram_users.py  the `scram_users` file: user names with SCRAM keys (or plain passwords, for tests)

Everything here is plain data and functions: the broker core (core/access.py, core/auth_methods.py)
asks the questions, config.py loads the files. A bad line is an `AuthFileError` naming file and line.
"""

from .acl import READ, WRITE, AccessControlList
from .errors import AuthFileError
from .passwords import PasswordFile
from .scram_users import ScramUsers

__all__ = ["READ", "WRITE", "AccessControlList", "AuthFileError", "PasswordFile", "ScramUsers"]
