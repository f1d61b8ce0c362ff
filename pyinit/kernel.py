"""The few process controls that ``os`` does not expose: prctl and the tty.

ctypes is imported only when one of these is needed, which as PID 1 with no
``--pdeathsig`` and no terminal is never.
"""

from __future__ import annotations

import fcntl
import os
import signal
import termios

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


_libc = None


def load_libc() -> None:
    """Load libc for prctl now, in the parent: a child between fork and exec calls
    ``die_with_parent`` and must not take the dynamic loader's lock there."""
    global _libc
    if _libc is None:
        import ctypes

        _libc = ctypes.CDLL(None, use_errno=True)


def _prctl(option: int, value: int) -> None:
    load_libc()
    assert _libc is not None
    if _libc.prctl(option, value, 0, 0, 0) != 0:
        import ctypes

        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def become_subreaper() -> None:
    """Adopt orphans as PID 1 would, so reaping works under a Procfile or ``docker run --init``."""
    _prctl(PR_SET_CHILD_SUBREAPER, 1)


def set_parent_death_signal(number: int) -> None:
    _prctl(PR_SET_PDEATHSIG, number)


def die_with_parent() -> None:
    """In a child: be SIGKILLed if pyinit itself dies (it can only be SIGKILLed).

    Outside a PID namespace nothing else would stop a child that runs in its
    own session; inside one, PID 1's death takes everything with it anyway.
    """
    try:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def can_switch_users() -> bool:
    """Whether ``--user`` can work: setuid and setgroups need CAP_SETUID and CAP_SETGID, not uid 0 as such."""
    wanted = 1 << 7 | 1 << 6  # CAP_SETUID, CAP_SETGID
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16) & wanted == wanted
    except OSError:
        pass
    return os.geteuid() == 0  # no /proc: judge by the uid


def release_terminal() -> bool:
    """Give up pyinit's controlling terminal so the child can take it.

    When pyinit leads its session, the kernel answers TIOCNOTTY with SIGHUP and
    SIGCONT to the foreground group, that is to pyinit itself. They are pending
    (all signals are blocked) and are consumed here, so they are never
    forwarded: the child would otherwise be hung up by its own hand-off.
    Returns whether pyinit had a terminal to hand over.
    """
    if not os.isatty(0):
        return False
    try:
        fcntl.ioctl(0, termios.TIOCNOTTY)
    except OSError:
        return False
    if os.getsid(0) == os.getpid():
        for number in (signal.SIGHUP, signal.SIGCONT):
            signal.sigtimedwait({number}, 0)
    return True


def take_terminal() -> None:
    """In the child, after setsid: make stdin's tty the controlling terminal.

    Runs between fork and exec, so it calls nothing that could take a lock.
    """
    try:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    except OSError:
        pass
