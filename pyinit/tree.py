"""pyinit's descendants, found through /proc by psutil.

A process that called setsid() or setpgid() has left the child's process
group, so killpg() cannot reach it; walking the parent links can. As PID 1 or
a subreaper, every orphan is re-parented to pyinit, so "all of pyinit's
descendants" is exactly what the child left behind. psutil is imported here
only: when something must be swept, or when a kill deadline is armed.
"""

from __future__ import annotations


def prepare() -> None:
    """Import psutil ahead of a deadline, so the SIGKILL it brings does not wait tens of ms for it."""
    import psutil  # noqa: F401


def signal_descendants(number: int, exclude: frozenset[int] = frozenset()) -> dict[int, str]:
    """Send ``number`` to every descendant not in ``exclude``; return ``pid N (name)`` by pid."""
    import psutil

    reached = {}
    for process in psutil.Process().children(recursive=True):
        if process.pid in exclude:
            continue
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                continue  # already dead, only waiting to be reaped
            label = f"pid {process.pid} ({process.name()})"
            process.send_signal(number)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        reached[process.pid] = label
    return reached
