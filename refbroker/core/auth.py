"""Who may connect. For now only mosquitto's `allow_anonymous`; password and ACL files come later.

With anonymous access refused and no password file there is nobody who can log in: mosquitto
then refuses every client, and so do we (3.1.1: return code 5, 5.0: 0x87 Not authorized).
"""

from __future__ import annotations

from ..protocol import Connect
from .settings import Settings


def may_connect(settings: Settings, connect: Connect) -> bool:
    # No password file yet, so a user name alone proves nothing: everyone counts as anonymous.
    return settings.anonymous_allowed
