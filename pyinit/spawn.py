"""Starting processes: the main child and every hook go through ``spawn``.

subprocess.Popen does the fork/exec: it reports exec failures back to the
parent and switches user and groups. Descriptors pass through as tini and
dumb-init pass them: whatever pyinit inherited (a socket-activated listener,
a pipe, ``exec 3>log``) reaches every child under the same number, and what
pyinit opens itself never does, because Python opens everything close-on-exec
(PEP 446). So Popen is told not to close anything (``close_fds=False``).

A tiny pre-exec step does what Popen cannot: it clears pyinit's blocked signal
mask, which the child would otherwise inherit, takes the terminal when handing
one over, and sets the few variables pyinit adds to its own environment. Those
are set in the child, between fork and exec, because one of them is the
child's own pid (``LISTEN_PID``, for socket activation). Popen is given no
``env``, so it execs with that environment. Popen never waits for these
children: the process table reaps them and writes the status back (see
``Children.reap``).
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Callable

from pyinit import kernel


@dataclass(frozen=True)
class User:
    """A resolved ``--user USER[:GROUP]``: ids, supplementary groups and home."""

    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str | None


#: The largest uid or gid: (uid_t)-1, one more, means "leave unchanged" to the kernel.
MAX_ID = 2**32 - 2


def resolve_user(spec: str) -> User:
    """Resolve names or ids now, so a bad ``--user`` fails before anything runs."""
    user_part, _, group_part = spec.partition(":")
    if not user_part:
        raise ValueError(f"{spec!r}: no user given")
    uid, entry = _lookup_user(spec, user_part)
    if group_part:
        gid = _lookup_group(spec, group_part)
    else:
        gid = uid if entry is None else entry.pw_gid
    groups = (gid,) if entry is None else tuple(os.getgrouplist(entry.pw_name, gid))
    return User(uid=uid, gid=gid, groups=groups, home=None if entry is None else entry.pw_dir)


def _lookup_user(spec: str, part: str) -> tuple[int, pwd.struct_passwd | None]:
    number = _id(spec, part, "uid")
    try:
        entry = pwd.getpwnam(part) if number is None else pwd.getpwuid(number)
    except KeyError:
        if number is None:
            raise ValueError(f"{part!r} is not a known user") from None
        return number, None  # a bare uid with no passwd entry is fine, as with docker --user
    return entry.pw_uid, entry


def _lookup_group(spec: str, part: str) -> int:
    number = _id(spec, part, "gid")
    if number is not None:
        return number
    try:
        return grp.getgrnam(part).gr_gid
    except KeyError:
        raise ValueError(f"{part!r} is not a known group") from None


def _id(spec: str, part: str, what: str) -> int | None:
    """``part`` as a numeric id, or None when it is a name; ValueError naming ``spec`` when out of range."""
    if not (part.isascii() and part.isdigit()):
        return None
    if int(part) > MAX_ID:
        raise ValueError(f"{spec!r}: {what} {part} is out of range (0 to {MAX_ID})")
    return int(part)


class ExecError(Exception):
    """The command could not be started; ``code`` is the shell's 126 or 127."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _child_setup(take_tty: bool, env: Mapping[str, str], own_listen_pid: bool) -> Callable[[], None]:
    orphan_guard = os.getpid() != 1
    if orphan_guard:
        kernel.load_libc()
    additions = list(env.items())

    def setup() -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        if orphan_guard:
            kernel.die_with_parent()
        if take_tty:
            kernel.take_terminal()
        for name, value in additions:
            os.putenv(name, value)
        if own_listen_pid:
            os.putenv("LISTEN_PID", str(os.getpid()))

    return setup


@dataclass(frozen=True)
class SpawnOptions:
    """How one process is started: the main child and the hooks differ only in these.

    ``env`` is added to pyinit's own environment. With ``socket_activated``, a
    ``LISTEN_PID`` that names pyinit is rewritten to name the child: the
    sockets systemd or podman handed to pyinit are meant for the app, and
    ``sd_listen_fds()`` only takes them under its own pid.
    """

    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    user: User | None = None
    take_tty: bool = False
    new_session: bool = True
    quiet_stdin: bool = False
    socket_activated: bool = False


def spawn(argv: Sequence[str], options: SpawnOptions) -> subprocess.Popen[bytes]:
    """Start ``argv``; raise ExecError with 126/127 when it cannot be executed.

    A file without ``#!`` (ENOEXEC) is run by ``/bin/sh``, as execvp does for
    tini and dumb-init, and as every shell does.
    """
    user = options.user
    additions = dict(options.env)
    if user is not None and user.home:
        additions["HOME"] = user.home
    own_listen_pid = options.socket_activated and os.environ.get("LISTEN_PID") == str(os.getpid())

    def start(args: list[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            args,
            cwd=options.cwd,
            stdin=subprocess.DEVNULL if options.quiet_stdin else None,
            close_fds=False,
            start_new_session=options.new_session,
            preexec_fn=_child_setup(options.take_tty, additions, own_listen_pid),
            user=None if user is None else user.uid,
            group=None if user is None else user.gid,
            extra_groups=None if user is None else list(user.groups),
        )

    try:
        try:
            return start(list(argv))
        except OSError as exc:
            if exc.errno != errno.ENOEXEC:
                raise
            return start(["/bin/sh", (shutil.which(argv[0]) if "/" not in argv[0] else None) or argv[0], *argv[1:]])
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise ExecError(127, f"{argv[0]}: {exc.strerror}") from None
    except OSError as exc:
        raise ExecError(126, f"{argv[0]}: {exc.strerror}") from None
    except subprocess.SubprocessError as exc:
        raise ExecError(126, f"{argv[0]}: {exc}") from None
