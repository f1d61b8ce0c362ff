"""The one loop: wait for the next signal or the nearest deadline, then act.

As in tini's ``main()``, the whole life of the init reads top to bottom in
``boot``: prepare the process, wire the parts, start, then loop until the
lifecycle has an exit code. All signals are blocked, so nothing is ever
delivered asynchronously: they are collected here, one at a time, by
sigtimedwait. An idle pyinit is asleep in that call and wakes for nothing else.
"""

from __future__ import annotations

import os
import signal
import time
from typing import TYPE_CHECKING

from pyinit import kernel, tree
from pyinit.children import Children
from pyinit.config import Config
from pyinit.hooks import HookRunner
from pyinit.lifecycle import Lifecycle
from pyinit.log import Log
from pyinit.readiness import Readiness
from pyinit.signals import FORWARDABLE
from pyinit.timers import Timers

if TYPE_CHECKING:
    from pyinit.probe import ProbeServer

WAITED = FORWARDABLE | {signal.SIGCHLD}


def boot(config: Config, server: ProbeServer | None = None) -> int:
    """Run the init until the child is gone and everything is settled; return the exit code."""
    log = Log(config.verbosity, config.log_format)
    take_tty = _prepare_process(config, log)
    timers = Timers()
    children = Children(log, rewrite=config.rewrite, single_child=config.single_child, warn_on_reap=config.warn_on_reap)
    hooks = HookRunner(children, timers, log, cwd=config.cwd, user=config.user, timeout=config.hook_timeout)
    readiness = Readiness(log, config.ready_file, config.user)
    if server is not None:
        server.serve(readiness, log)
    life = Lifecycle(config, log, children, timers, readiness, hooks, take_tty=take_tty)
    try:
        life.begin()
        while True:
            timers.fire_due()
            if life.exit_code is not None:
                return life.exit_code
            info = _next_signal(timers.timeout())
            if info is None:
                continue  # a deadline is due: fire_due() acts on it
            arrived = time.monotonic()
            for number in _with_pending(info.si_signo):
                if number == signal.SIGCHLD:
                    children.reap()
                    life.on_reaped()
                else:
                    life.on_signal(number, arrived)
    except Exception:
        # A bug in pyinit must not leave the child running unsupervised. With -c
        # only what pyinit started is killed: what the child started is not its to touch.
        import traceback

        whom = "what it started" if config.single_child else "every descendant"
        log.error("internal_error", f"internal error, killing {whom}:\n" + traceback.format_exc().rstrip())
        if config.single_child:
            children.kill_started()
        else:
            tree.signal_descendants(signal.SIGKILL)
        return 70  # EX_SOFTWARE


def _prepare_process(config: Config, log: Log) -> bool:
    """Reap orphans outside PID 1, arm --pdeathsig, release the terminal; True if the child may take it."""
    if os.getpid() != 1:
        try:
            kernel.become_subreaper()
        except OSError as exc:
            log.error("subreaper", f"cannot become a subreaper ({exc.strerror}): orphans will not be reaped")
    if config.pdeathsig:
        kernel.set_parent_death_signal(config.pdeathsig)
    return not config.single_child and kernel.release_terminal()


def _with_pending(first: int) -> list[int]:
    """``first`` and every signal pending beside it, in the kernel's order (lowest first).

    All of them had arrived when the loop woke, so all are stamped with that
    moment: a stop signal queued behind a slow one (an ``--on`` hook to spawn)
    still has its T0 when it came, not when its turn did.
    """
    numbers = [first]
    while (info := signal.sigtimedwait(WAITED, 0)) is not None:
        numbers.append(info.si_signo)
    return numbers


def _next_signal(timeout: float | None) -> signal.struct_siginfo | None:
    if timeout is None:
        return signal.sigwaitinfo(WAITED)
    return signal.sigtimedwait(WAITED, timeout)
