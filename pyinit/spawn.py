"""Starting processes: the main child and every hook go through ``spawn``.

subprocess.Popen does the fork/exec: it reports exec failures back to the
parent, switches user and groups, and closes every inherited descriptor. The
one thing it cannot do is undo pyinit's blocked signal mask, which the child
would otherwise inherit, so a tiny pre-exec step clears it (and takes the
terminal, when handing one over). Popen never waits for these children: the
process table reaps them and writes the status back (see ``Children.reap``).
"""

from __future__ import annotations

import grp
import os
import pwd
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Callable

from pyinit import kernel


@dataclass(frozen=True)
class User:
    """A resolved ``--user USER[:GROUP]``: ids, supplementary groups and home."""

    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str | None


def resolve_user(spec: str) -> User:
    """Resolve names or ids now, so a bad ``--user`` fails before anything runs."""
    user_part, _, group_part = spec.partition(":")
    if not user_part:
        raise ValueError(f"{spec!r}: no user given")
    try:
        entry = pwd.getpwuid(int(user_part)) if user_part.isdigit() else pwd.getpwnam(user_part)
    except KeyError:
        if not user_part.isdigit():
            raise ValueError(f"{user_part!r} is not a known user") from None
        entry = None
    uid = int(user_part) if entry is None else entry.pw_uid
    if group_part:
        try:
            gid = int(group_part) if group_part.isdigit() else grp.getgrnam(group_part).gr_gid
        except KeyError:
            raise ValueError(f"{group_part!r} is not a known group") from None
    else:
        gid = uid if entry is None else entry.pw_gid
    groups = (gid,) if entry is None else tuple(os.getgrouplist(entry.pw_name, gid))
    return User(uid=uid, gid=gid, groups=groups, home=None if entry is None else entry.pw_dir)


class ExecError(Exception):
    """The command could not be started; ``code`` is the shell's 126 or 127."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _child_setup(take_tty: bool) -> Callable[[], None]:
    orphan_guard = os.getpid() != 1
    if orphan_guard:
        kernel.load_libc()

    def setup() -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        if orphan_guard:
            kernel.die_with_parent()
        if take_tty:
            kernel.take_terminal()

    return setup


@dataclass(frozen=True)
class SpawnOptions:
    """How one process is started: the main child and the hooks differ only in these."""

    env: Mapping[str, str] | None = None
    cwd: str | None = None
    user: User | None = None
    take_tty: bool = False
    new_session: bool = True
    quiet_stdin: bool = False


def spawn(argv: Sequence[str], options: SpawnOptions) -> subprocess.Popen[bytes]:
    """Start ``argv``; raise ExecError with 126/127 when it cannot be executed."""
    user = options.user
    child_env = dict(os.environ if options.env is None else options.env)
    if user is not None and user.home:
        child_env["HOME"] = user.home
    try:
        return subprocess.Popen(
            list(argv),
            env=child_env,
            cwd=options.cwd,
            stdin=subprocess.DEVNULL if options.quiet_stdin else None,
            start_new_session=options.new_session,
            preexec_fn=_child_setup(options.take_tty),
            user=None if user is None else user.uid,
            group=None if user is None else user.gid,
            extra_groups=None if user is None else list(user.groups),
        )
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise ExecError(127, f"{argv[0]}: {exc.strerror}") from None
    except OSError as exc:
        raise ExecError(126, f"{argv[0]}: {exc.strerror}") from None
    except subprocess.SubprocessError as exc:
        raise ExecError(126, f"{argv[0]}: {exc}") from None
