"""What /proc says about a process, read from outside its PID namespace."""

from __future__ import annotations

import os


def status(pid: int, tid: str | None = None) -> dict[str, str]:
    """/proc/PID/status, or one thread's (/proc/PID/task/TID/status), as a dict."""
    fields = {}
    with open(f"/proc/{pid}/status" if tid is None else f"/proc/{pid}/task/{tid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def _stat_fields(stat: bytes) -> list[bytes]:
    """The fields of /proc/PID/stat after the command name, which may hold spaces."""
    return stat[stat.rindex(b")") + 2 :].split()


def state(pid: int) -> str:
    """The one-letter state (R, S, T, Z, ...), or "gone"."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return "gone"
    return _stat_fields(stat)[0].decode()


def zombies_of(parent: int) -> int:
    """A full /proc scan: how many Z-state processes have PPid ``parent``."""
    count = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = _stat_fields(stat)
        if fields[0] == b"Z" and int(fields[1]) == parent:
            count += 1
    return count


def children_text(pid: int, tids: list[str]) -> str:
    """The raw children lists of every thread: zombies stay in them until reaped."""
    text = ""
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                text += f.read()
        except FileNotFoundError:
            pass
    return text


def children(pid: int, tids: list[str]) -> list[int]:
    return [int(p) for p in children_text(pid, tids).split()]
