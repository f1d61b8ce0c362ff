"""Readiness that flips off at T0: a file, and the state the HTTP probes read.

The load balancer should stop sending traffic the moment shutdown begins, not
when the app finally closes its socket. ``/ready`` turns 503 at T0, while the
app is still serving, which is what lets the pre-stop delay drain cleanly. The
HTTP side lives in ``pyinit.probe``, imported only with ``--ready-port``.

The ready file sits where the app can write, so it is handled as hostile:
it is created with ``O_CREAT|O_EXCL|O_NOFOLLOW``, which never opens anything
already there (a planted symlink, a FIFO, a device, another file), and, with
``--user``, by a forked helper running as that user, so that pyinit's root
reaches no further than the app could. Failing to create or remove it is one
log line: readiness is advice to a prober, never a reason to break a drain.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Callable

from pyinit.log import Log
from pyinit.spawn import User

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class Readiness:
    def __init__(self, log: Log, ready_file: str | None = None, user: User | None = None) -> None:
        self.log = log
        #: Read by the probe thread; written only by the main loop.
        self.ready = False
        self._file = ready_file
        self._user = user
        #: Whether the ready file is pyinit's to remove: created, or found as a plain file.
        self._placed = False

    def up(self) -> None:
        self.ready = True
        if self._file and not self._placed:
            self._placed = self._create(self._file)

    def down(self) -> None:
        self.ready = False
        if self._file and self._placed:
            self._placed = False
            path = self._file
            error = self._as_user(lambda: os.unlink(path))
            if error is not None and error.errno != errno.ENOENT:
                self.log.error("ready_file", f"cannot remove --ready-file {path}: {error.strerror}")

    def _create(self, path: str) -> bool:
        error = self._as_user(lambda: os.close(os.open(path, _CREATE, 0o644)))
        if error is not None and error.errno == errno.EEXIST:  # something is there already: never open it
            try:
                if stat.S_ISREG(os.lstat(path).st_mode):
                    return True  # a plain file left over: it says ready, and goes at T0
                error = OSError(errno.EEXIST, "it exists and is not a plain file")
            except OSError as exc:
                error = exc
        if error is not None:
            self.log.error("ready_file", f"cannot create --ready-file {path}: {error.strerror}")
            return False
        return True

    def _as_user(self, action: Callable[[], None]) -> OSError | None:
        """Run ``action`` as ``--user`` (in a forked helper), or as pyinit; return its error, if any."""
        if self._user is not None:
            return _as(self._user, action)
        try:
            action()
        except OSError as exc:
            return exc
        return None


def _as(user: User, action: Callable[[], None]) -> OSError | None:
    """Fork, switch to ``user`` and run ``action``; the helper's exit status carries the errno.

    The main loop waits for this one pid itself, at once: it is gone before
    the reaper could see it, and takes about a millisecond.
    """
    try:
        pid = os.fork()
    except OSError as exc:
        return exc
    if pid == 0:
        code = 255
        try:
            os.setgroups(list(user.groups))
            os.setgid(user.gid)
            os.setuid(user.uid)
            action()
            code = 0
        except OSError as exc:
            code = exc.errno or 255
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code == 0:
        return None
    return OSError(code, os.strerror(code) if code > 0 else f"its helper died of signal {-code}")
