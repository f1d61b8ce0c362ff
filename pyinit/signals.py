"""Signal names, numbers and the sets that decide what pyinit does with each.

Kept free of policy: the supervisor decides *when* to forward, this module only
knows *what* a signal is called and which ones may be forwarded at all.
"""

from __future__ import annotations

import re
import signal

#: The real-time signals, as the C library numbers them (glibc keeps the first
#: two kernel ones, 32 and 33, for its threads).
REALTIME: range = range(signal.SIGRTMIN, signal.SIGRTMAX + 1)

#: Why a signal can never be one pyinit acts on: as a stop signal, a rewrite's source or an ``--on`` trigger.
NEVER_RECEIVED: dict[int, str] = {
    signal.SIGKILL: "cannot be caught, so it never reaches pyinit",
    signal.SIGSTOP: "cannot be caught, so it never reaches pyinit",
    signal.SIGCHLD: "is pyinit's own: it drives reaping and is never passed on",
}

#: Every other signal, real-time ones included: these are the ones pyinit collects and forwards.
FORWARDABLE: frozenset[int] = frozenset(range(1, 32)) - NEVER_RECEIVED.keys() | frozenset(REALTIME)

#: Terminal job-control stops. After forwarding one, pyinit stops itself (as
#: dumb-init does). In session mode the child has no terminal of pyinit's to be
#: stopped by, so by default these reach it as SIGSTOP.
JOB_CONTROL_STOPS: frozenset[int] = frozenset({signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU})

#: Classic names with their aliases (SIGIOT, SIGCLD, SIGPOLL), as the shell knows them.
_CLASSIC: dict[str, int] = {
    name: int(member.value) for name, member in signal.Signals.__members__.items() if 1 <= member.value <= 31
}
_REALTIME_NAME = re.compile(r"SIGRT(MIN|MAX)(?:([+-])(\d+))?")


def _realtime_name(number: int) -> str:
    """``SIGRTMIN+N`` up to the middle of the range, ``SIGRTMAX-N`` above it, as ``kill -l`` prints them."""
    above, below = number - signal.SIGRTMIN, signal.SIGRTMAX - number
    if above <= (REALTIME.stop - 1 - REALTIME.start) // 2:
        return f"SIGRTMIN+{above}" if above else "SIGRTMIN"
    return f"SIGRTMAX-{below}" if below else "SIGRTMAX"


def _parse_realtime(name: str, text: str) -> int | None:
    """``SIGRTMIN[+N|-N]`` or ``SIGRTMAX[+N|-N]``; None when ``name`` is not of that form."""
    match = _REALTIME_NAME.fullmatch(name)
    if not match:
        return None
    base, sign, offset = match.groups()
    number = (signal.SIGRTMIN if base == "MIN" else signal.SIGRTMAX) + (-1 if sign == "-" else 1) * int(offset or 0)
    if number not in REALTIME:
        raise ValueError(
            f"{text!r} is outside the real-time signals, SIGRTMIN ({REALTIME.start}) to SIGRTMAX ({REALTIME.stop - 1})"
        )
    return number


def parse_signal(text: str, *, allow_zero: bool = False, received: bool = False) -> int:
    """Turn ``TERM``, ``SIGTERM``, ``term``, ``15``, ``RTMIN+3`` or ``SIGRTMAX-2`` into its number.

    Raises ValueError naming the bad value. ``0`` is only accepted where it
    means "drop the signal" (the TO side of a rewrite). With ``received``, the
    signal must be one pyinit can get and act on.
    """
    number = _parse_signal(text, allow_zero)
    if received and number in NEVER_RECEIVED:
        raise ValueError(f"{text!r} {NEVER_RECEIVED[number]}")
    return number


def _parse_signal(text: str, allow_zero: bool) -> int:
    value = text.strip()
    if value.isascii() and value.isdigit():
        number = int(value)
        if (number == 0 and allow_zero) or 1 <= number <= 31 or number in REALTIME:
            return number
        raise ValueError(
            f"{text!r} is not a signal number from 1 to 31 or {REALTIME.start} to {REALTIME.stop - 1} (real-time)"
        )
    name = value.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    named = _CLASSIC.get(name) or _parse_realtime(name, text)
    if named is None:
        raise ValueError(f"{text!r} is not a known signal name")
    return named


_NAMES: dict[int, str] = {member.value: member.name for member in signal.Signals}
_NAMES.update({number: _realtime_name(number) for number in REALTIME})


def signal_name(number: int) -> str:
    """``15`` -> ``SIGTERM``, ``37`` -> ``SIGRTMIN+3``; a dict, as enum lookups cost µs on every forward."""
    return _NAMES.get(number, f"signal {number}")


def block_all() -> None:
    """Block every signal so that none is delivered, only collected.

    This must happen before the first fork: a signal that arrives while the
    child is being spawned then waits, pending, for sigwaitinfo (dumb-init #102).
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())


def reset_dispositions() -> None:
    """Set every catchable signal, real-time ones included, back to SIG_DFL in pyinit itself.

    Children inherit ignored dispositions across exec. A launcher that ignored
    SIGINT, or worse SIGCHLD (which makes the kernel reap for us and lose exit
    statuses), must not leak that into pyinit or its child.
    """
    for number in FORWARDABLE | {signal.SIGCHLD}:
        signal.signal(number, signal.SIG_DFL)
