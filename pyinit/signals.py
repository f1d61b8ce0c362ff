"""Signal names, numbers and the sets that decide what pyinit does with each.

Kept free of policy: the supervisor decides *when* to forward, this module only
knows *what* a signal is called and which ones may be forwarded at all.
"""

from __future__ import annotations

import signal

#: Every catchable classic signal. SIGKILL and SIGSTOP cannot be caught, and
#: SIGCHLD is pyinit's own business (it drives reaping), so none is forwarded.
FORWARDABLE: frozenset[int] = frozenset(range(1, 32)) - {
    signal.SIGKILL,
    signal.SIGSTOP,
    signal.SIGCHLD,
}

#: Terminal job-control stops. In session mode the child has no terminal of
#: pyinit's to be stopped by, so these are turned into SIGSTOP (as dumb-init does).
JOB_CONTROL_STOPS: frozenset[int] = frozenset({signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU})


def parse_signal(text: str, *, allow_zero: bool = False) -> int:
    """Turn ``TERM``, ``SIGTERM``, ``term`` or ``15`` into 15.

    Raises ValueError naming the bad value. ``0`` is only accepted where it
    means "drop the signal" (the TO side of a rewrite).
    """
    value = text.strip()
    if value.isdigit():
        number = int(value)
        if number == 0 and allow_zero:
            return 0
        if 1 <= number <= 31:
            return number
        raise ValueError(f"{text!r} is not a signal number from 1 to 31")
    name = value.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    member = getattr(signal.Signals, name, None) if name.isidentifier() else None
    if member is None or not 1 <= member.value <= 31:
        raise ValueError(f"{text!r} is not a known signal name")
    return int(member.value)


_NAMES: dict[int, str] = {member.value: member.name for member in signal.Signals}


def signal_name(number: int) -> str:
    """``15`` -> ``SIGTERM``; used in every log line about a signal (a dict: enum lookups cost µs)."""
    return _NAMES.get(number, f"signal {number}")


def block_all() -> None:
    """Block every signal so that none is delivered, only collected.

    This must happen before the first fork: a signal that arrives while the
    child is being spawned then waits, pending, for sigwaitinfo (dumb-init #102).
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())


def reset_dispositions() -> None:
    """Set every catchable signal back to SIG_DFL in pyinit itself.

    Children inherit ignored dispositions across exec. A launcher that ignored
    SIGINT, or worse SIGCHLD (which makes the kernel reap for us and lose exit
    statuses), must not leak that into pyinit or its child.
    """
    for number in FORWARDABLE | {signal.SIGCHLD}:
        signal.signal(number, signal.SIG_DFL)
