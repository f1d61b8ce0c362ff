"""The one loop: wait for the next signal or the nearest deadline, then act.

Like tini's main loop, the whole life of the init is visible in ``run``. All
signals are blocked, so nothing is ever delivered asynchronously: they are
collected here, one at a time, by sigtimedwait. An idle pyinit is asleep in
that call and wakes for nothing else.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Sequence
from typing import Any, Callable

from pyinit import kernel, tree
from pyinit.config import Config
from pyinit.lifecycle import Lifecycle
from pyinit.log import DEBUG, INFO, Log
from pyinit.readiness import Readiness
from pyinit.signals import FORWARDABLE, signal_name
from pyinit.spawn import spawn
from pyinit.timers import Timers

WAITED = FORWARDABLE | {signal.SIGCHLD}


class Supervisor:
    def __init__(self, config: Config, log: Log, readiness: Readiness, *, take_tty: bool = False) -> None:
        self.config = config
        #: Whether pyinit released a terminal for the child to take (session mode).
        self.take_tty = take_tty
        self.log = log
        self.readiness = readiness
        self.timers = Timers()
        #: Every process pyinit started and has not yet reaped, with the callback
        #: that wants its exit code. Orphans that are reaped but not in here are
        #: the zombies an init exists to collect.
        self._owners: dict[int, tuple[subprocess.Popen[bytes], Callable[[int], None]]] = {}
        self.lifecycle = Lifecycle(self)

    def run(self) -> int:
        self.lifecycle.begin()
        while True:
            self.timers.fire_due()
            if self.lifecycle.exit_code is not None:
                return self.lifecycle.exit_code
            info = self._next_signal(self.timers.timeout())
            if info is None:
                continue  # a deadline is due: fire_due() acts on it
            if info.si_signo == signal.SIGCHLD:
                self.reap()
            else:
                self.lifecycle.on_signal(info.si_signo)

    @staticmethod
    def _next_signal(timeout: float | None) -> signal.struct_siginfo | None:
        if timeout is None:
            return signal.sigwaitinfo(WAITED)
        return signal.sigtimedwait(WAITED, timeout)

    def start(self, argv: Sequence[str], on_exit: Callable[[int], None], **options: object) -> int:
        """Spawn a supervised child; ``on_exit`` gets its shell-style exit code."""
        process = spawn(argv, **options)  # type: ignore[arg-type]
        self._owners[process.pid] = (process, on_exit)
        return process.pid

    def reap(self) -> None:
        """Collect every exited child: SIGCHLDs coalesce, so one may stand for many."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            code = os.waitstatus_to_exitcode(status)
            code = 128 - code if code < 0 else code
            owner = self._owners.pop(pid, None)
            if owner is None:
                if self.config.warn_on_reap:
                    self.log.info("zombie_reaped", f"reaped zombie pid {pid} (exit {code})", pid=pid, code=code)
                continue
            process, on_exit = owner
            process.returncode = code  # so Popen never waits on a pid we already reaped
            on_exit(code)
        self.lifecycle.on_reaped()

    def has_children(self) -> bool:
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
        to = self.config.rewrite.get(number, number)
        if to:
            try:
                if self.config.single_child:
                    os.kill(pid, to)
                else:
                    os.killpg(pid, to)
            except ProcessLookupError:
                return
        level = INFO if timeline else DEBUG
        if self.log.wants(level):
            self._log_forward(level, number, to, pid)
        if to == signal.SIGSTOP and number != to and not self.config.single_child:
            # Job control: the child is stopped, so stop with it; SIGCONT wakes both.
            os.kill(os.getpid(), signal.SIGSTOP)

    def _log_forward(self, level: int, number: int, to: int, pid: int) -> None:
        if not to:
            self.log.emit(level, "signal_dropped", f"{signal_name(number)} dropped (rewritten to 0)")
            return
        target = f"pid {pid}" if self.config.single_child else f"process group {pid}"
        rewritten = f" (rewritten from {signal_name(number)})" if to != number else ""
        self.log.emit(
            level, "signal_forwarded", f"forwarded {signal_name(to)} to {target}{rewritten}", signal=signal_name(to)
        )


def boot(config: Config, server: Any = None) -> int:
    """Prepare the process itself (reaping, parent death, terminal), then run the loop."""
    log = Log(config.verbosity, config.log_format)
    if os.getpid() != 1:
        try:
            kernel.become_subreaper()
        except OSError as exc:
            log.error("subreaper", f"cannot become a subreaper ({exc.strerror}): orphans will not be reaped")
    if config.pdeathsig:
        kernel.set_parent_death_signal(config.pdeathsig)
    take_tty = not config.single_child and kernel.release_terminal()
    readiness = Readiness(log, config.ready_file, server)
    try:
        return Supervisor(config, log, readiness, take_tty=take_tty).run()
    except Exception:
        # A bug in pyinit must not leave the child running unsupervised.
        import traceback

        log.error("internal_error", "internal error, killing every descendant:\n" + traceback.format_exc().rstrip())
        tree.signal_descendants(signal.SIGKILL)
        return 70  # EX_SOFTWARE
