"""The process table: everything pyinit started, and the reaper that routes each exit.

The main child, every hook and the stop command are entries here. When the
kernel reports exits, each pid goes back to whoever started it; a pid nobody
owns is an orphan that was re-parented to pyinit, the zombie an init exists
to collect. Forwarding lives here too, since it is "signal one of my children"
under the rewrite and single-child rules.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from typing import Callable

from pyinit.log import DEBUG, INFO, Log
from pyinit.signals import JOB_CONTROL_STOPS, signal_name
from pyinit.spawn import SpawnOptions, spawn


class Children:
    def __init__(self, log: Log, *, rewrite: Mapping[int, int], single_child: bool, warn_on_reap: bool) -> None:
        self._log = log
        self._rewrite = rewrite
        self._single_child = single_child
        self._warn_on_reap = warn_on_reap
        #: Every process pyinit started and has not yet reaped, with the callback
        #: that wants its exit code.
        self._owners: dict[int, tuple[subprocess.Popen[bytes], Callable[[int], None]]] = {}

    def start(self, argv: Sequence[str], options: SpawnOptions, on_exit: Callable[[int], None]) -> int:
        """Spawn a supervised child; ``on_exit`` gets its shell-style exit code."""
        process = spawn(argv, options)
        self._owners[process.pid] = (process, on_exit)
        return process.pid

    def reap(self) -> None:
        """Collect every exited child: SIGCHLDs coalesce, so one may stand for many."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = os.waitstatus_to_exitcode(status)
            code = 128 - code if code < 0 else code
            owner = self._owners.pop(pid, None)
            if owner is None:
                if self._warn_on_reap:
                    self._log.info("zombie_reaped", f"reaped zombie pid {pid} (exit {code})", pid=pid, code=code)
                continue
            process, on_exit = owner
            process.returncode = code  # so Popen never waits on a pid we already reaped
            on_exit(code)

    def kill_started(self) -> None:
        """SIGKILL every process pyinit started (the child, running hooks) and has not reaped."""
        for pid in self._owners:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    @staticmethod
    def any_left() -> bool:
        """Whether any child (alive or a zombie) remains; reaps nothing.

        As PID 1 or a subreaper, no child means no descendant at all: orphans
        are re-parented to pyinit before their parent's exit is reported.
        """
        try:
            os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return False
        return True

    def forward(self, number: int, pid: int, *, timeline: bool = False) -> None:
        """Send a signal, rewritten, to the child's process group (or to it alone with -c).

        The kill comes first and the log line is only built if it will be shown:
        every microsecond before the kill is forwarding latency.
        """
        to = self._rewrite.get(number, number)
        reached = True
        if to:
            try:
                if self._single_child:
                    os.kill(pid, to)
                else:
                    os.killpg(pid, to)
            except ProcessLookupError:
                reached = False
        level = INFO if timeline else DEBUG
        if reached and self._log.wants(level):
            self._log_forward(level, number, to, pid)
        if number in JOB_CONTROL_STOPS:
            # dumb-init's rule: whatever the child got (SIGSTOP, the stop as it is with -c,
            # a rewrite, nothing), a terminal stop suspends the init too, so that the shell
            # or supervisor above sees it stop. SIGCONT wakes both. PID 1 cannot stop itself.
            self._log.debug("job_control", f"{signal_name(number)}: suspending pyinit until SIGCONT")
            os.kill(os.getpid(), signal.SIGSTOP)

    def _log_forward(self, level: int, number: int, to: int, pid: int) -> None:
        if not to:
            self._log.emit(level, "signal_dropped", f"{signal_name(number)} dropped (rewritten to 0)")
            return
        target = f"pid {pid}" if self._single_child else f"process group {pid}"
        rewritten = f" (rewritten from {signal_name(number)})" if to != number else ""
        self._log.emit(
            level, "signal_forwarded", f"forwarded {signal_name(to)} to {target}{rewritten}", signal=signal_name(to)
        )
