"""Who may connect (authentication) and what they may do (authorisation), as mosquitto 2.0 decides.

Authentication of a CONNECT without an Authentication Method (enhanced authentication, in
enhanced_auth.py, is the other way in):

1. The transport may already know who the client is: a TLS client certificate on a listener with
   `use_identity_as_username` (the server passes its Common Name). That is the user name; the
   CONNECT's user name and password are not looked at.
2. No user name in CONNECT: an anonymous client, accepted only if `allow_anonymous` (mosquitto 2.0:
   true without listeners, "local only" mode; false once a listener is configured).
3. A user name and a `password_file`: the password must match the user's hash.
4. A user name, no password file: accepted if anonymous clients are (the name is only a label).

mosquitto 2.0.11 answers every refusal with return code 5 Not authorized (3.1.1) / 0x87 Not
authorized (5.0), never 4 / 0x86 Bad user name or password; so do we (checked side by side).

Authorisation comes from the `acl_file` (auth/acl.py): without one, everyone may do everything.
"""

from __future__ import annotations

from ..auth import READ, WRITE
from ..protocol import Connect
from .settings import Settings


def authenticate(settings: Settings, connect: Connect, identity: str | None) -> tuple[bool, str | None, str]:
    """(accepted, the user name the client acts as, why not) for a CONNECT's basic credentials."""
    if identity is not None:
        return True, identity, ""
    if connect.username is None:
        if settings.anonymous_allowed:
            return True, None, ""
        return False, None, "anonymous clients are not allowed"
    if settings.passwords is not None:
        if settings.passwords.check(connect.username, connect.password):
            return True, connect.username, ""
        return False, None, f"bad user name or password for {connect.username!r}"
    if settings.anonymous_allowed:
        return True, connect.username, ""
    return False, None, "no password_file: nobody can log in"


def may_publish(settings: Settings, client_id: str, username: str | None, topic: str) -> bool:
    acl = settings.acl
    return acl is None or acl.allows(client_id, username, topic, WRITE)


def may_receive(settings: Settings, client_id: str, username: str | None, topic: str) -> bool:
    acl = settings.acl
    return acl is None or acl.allows(client_id, username, topic, READ)


def may_subscribe(settings: Settings, client_id: str, username: str | None, topic_filter: str) -> bool:
    acl = settings.acl
    return acl is None or acl.may_subscribe(client_id, username, topic_filter)
