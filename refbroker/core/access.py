"""Who may connect (authentication) and what they may do (authorisation), as mosquitto 2.0 decides.

Authentication of a CONNECT without an Authentication Method (enhanced authentication, in
auth_methods.py and auth_exchange.py, is the other way in):

1. The transport may already know who the client is: a TLS client certificate on a listener with
   `use_identity_as_username` (the server passes its Common Name) or `use_subject_as_username` (its
   whole subject). That is the user name; the CONNECT's user name and password are not looked at.
2. No user name in CONNECT: an anonymous client, accepted only if `allow_anonymous` (mosquitto 2.0:
   true without listeners, "local only" mode; false once a listener is configured).
3. A user name and a `password_file`: the password must match the user's hash.
4. A user name, no password file: accepted if anonymous clients are (the name is only a label).

mosquitto 2.0.11 answers every refusal with return code 5 Not authorized (3.1.1) / 0x87 Not
authorized (5.0), never 4 / 0x86 Bad user name or password; so do we (checked side by side).

Authorisation comes from the `acl_file` (auth/acl.py): without one, everyone may do everything.

Which password file and ACL apply is a `Security` (settings.py): the listener's own with
`per_listener_settings true`, else the global one. A connection takes the Security of the listener it
came in on; its session keeps the Security of the listener it was last connected through, which
decides what is delivered to it while it is offline (mosquitto 2.0 does the same).

Every question is asked again whenever it matters: a message is checked when it is routed to a
session and again when it leaves the queue or is sent again after a reconnect, against whoever is
connected to the session then (another user may have resumed it).
"""

from __future__ import annotations

from ..auth import READ, WRITE
from ..protocol import Connect
from .settings import Security


def authenticate(security: Security, connect: Connect, identity: str | None) -> tuple[bool, str | None, str]:
    """(accepted, the user name the client acts as, why not) for a CONNECT's basic credentials.
    The reason never contains the password (it goes to the log)."""
    return check_credentials(security, connect.username, connect.password, identity)


def check_credentials(security: Security, username: str | None, password: bytes | None,
                      identity: str | None) -> tuple[bool, str | None, str]:
    """`authenticate` for credentials kept from a CONNECT: also used again when the password file or
    allow_anonymous change while clients are connected (SIGHUP), as mosquitto does."""
    if identity is not None:
        return True, identity, ""
    if username is None:
        if security.allow_anonymous:
            return True, None, ""
        return False, None, "anonymous clients are not allowed"
    if security.passwords is not None:
        if security.passwords.check(username, password):
            return True, username, ""
        return False, None, f"bad user name or password for {username!r}"
    if security.allow_anonymous:
        return True, username, ""
    return False, None, "no password_file: nobody can log in"


def may_publish(security: Security, client_id: str, username: str | None, topic: str) -> bool:
    acl = security.acl
    return acl is None or acl.allows(client_id, username, topic, WRITE)


def may_receive(security: Security, client_id: str, username: str | None, topic: str) -> bool:
    acl = security.acl
    return acl is None or acl.allows(client_id, username, topic, READ)


def may_subscribe(security: Security, client_id: str, username: str | None, topic_filter: str) -> bool:
    acl = security.acl
    return acl is None or acl.may_subscribe(client_id, username, topic_filter)
