"""Trap-like hooks: commands pyinit runs at fixed points of the lifecycle.

Each hook is an ordinary supervised child, started and reaped by the same loop
as the main child: while a hook runs, signals are still forwarded and zombies
still reaped. A chain runs its hooks one after another and reports once.
"""

from __future__ import annotations

import functools
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable

from pyinit.children import Children
from pyinit.log import Log
from pyinit.spawn import ExecError, SpawnOptions, User
from pyinit.timers import Timers

PHASES = ("pre-start", "pre-stop", "post-stop")


@dataclass(frozen=True)
class Hook:
    phase: str
    label: str
    argv: tuple[str, ...]

    @classmethod
    def command(cls, phase: str, command: str) -> Hook:
        """A command line, run the way a trap body is: by ``/bin/sh -c``."""
        return cls(phase, f"{phase} hook {command!r}", ("/bin/sh", "-c", command))


def discover(hooks_dir: str, phase: str) -> tuple[Hook, ...]:
    """The executables in ``HOOKS_DIR/<phase>.d/``, in lexical order.

    Files there are executed directly (their own ``#!`` decides the
    interpreter; without one, ``/bin/sh`` runs them). Dotfiles are skipped, so a ``.keep`` placeholder is harmless;
    anything else that cannot be executed is a configuration error.
    """
    folder = os.path.join(hooks_dir, f"{phase}.d")
    if not os.path.isdir(folder):
        return ()
    try:
        names = sorted(os.listdir(folder))
    except OSError as exc:
        raise ValueError(f"{folder}: {exc.strerror}") from None
    hooks = []
    for name in names:
        if name.startswith("."):
            continue
        path = os.path.join(folder, name)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise ValueError(f"{path} is not an executable file")
        hooks.append(Hook(phase, f"{phase} hook {path}", (path,)))
    return tuple(hooks)


class HookRunner:
    """Starts hook processes the same way every time: the original cwd, ``--user``, a timeout.

    Built once by ``boot``; chains share it, so no chain needs the whole config.
    """

    def __init__(
        self,
        children: Children,
        timers: Timers,
        log: Log,
        *,
        cwd: str | None,
        user: User | None,
        timeout: float | None,
    ) -> None:
        self.children = children
        self.timers = timers
        self.log = log
        self._cwd = cwd
        self._user = user
        self._timeout = timeout

    def start(self, hook: Hook, env: Mapping[str, str], on_exit: Callable[[int], None]) -> int:
        """Start one hook (ExecError if it cannot be); its process group is killed at the timeout."""
        options = SpawnOptions(
            env={**env, "PYINIT_PHASE": hook.phase}, cwd=self._cwd, user=self._user, quiet_stdin=True
        )

        def exited(code: int) -> None:
            self.timers.cancel(f"hook:{pid}")
            on_exit(code)

        pid = self.children.start(hook.argv, options, exited)
        self.log.debug("hook_started", f"{hook.label} started as pid {pid}", hook=hook.label, pid=pid)
        if self._timeout is not None:
            self.timers.set(f"hook:{pid}", self._timeout, lambda: self._timed_out(hook, pid))
        return pid

    def _timed_out(self, hook: Hook, pid: int) -> None:
        self.log.error(
            "hook_timeout",
            f"{hook.label} timed out after {self._timeout:g}s: killing its process group {pid}",
            hook=hook.label,
            pid=pid,
        )
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class HookChain:
    """Runs ``hooks`` in order; calls ``on_done`` with the last failing status (0 if none).

    With ``stop_on_failure`` (pre-start), the first failure ends the chain.
    """

    def __init__(
        self,
        runner: HookRunner,
        hooks: tuple[Hook, ...],
        env: Mapping[str, str],
        on_done: Callable[[int], None],
        *,
        stop_on_failure: bool = False,
    ) -> None:
        self._runner = runner
        self._hooks = list(hooks)
        self._env = env
        self._on_done = on_done
        self._stop_on_failure = stop_on_failure
        self._status = 0
        self._cancelled = False

    def start(self) -> None:
        self._next()

    def cancel(self) -> None:
        """Start no further hook and never report; a running one is left to the sweep."""
        self._cancelled = True

    def _next(self) -> None:
        while not self._cancelled:
            if not self._hooks:
                self._on_done(self._status)
                return
            hook = self._hooks.pop(0)
            try:
                self._runner.start(hook, self._env, functools.partial(self._exited, hook))
            except ExecError as exc:
                self._runner.log.error("hook_failed", f"{hook.label}: {exc}", hook=hook.label, code=exc.code)
                if self._failed(exc.code):
                    return
                continue
            return

    def _failed(self, code: int) -> bool:
        """Record a failure; True when it ends the chain."""
        self._status = code
        if self._stop_on_failure and not self._cancelled:
            self._on_done(code)
            return True
        return False

    def _exited(self, hook: Hook, code: int) -> None:
        log = self._runner.log
        if code == 0:
            log.debug("hook_done", f"{hook.label} succeeded", hook=hook.label)
        else:
            log.error("hook_failed", f"{hook.label} failed with exit code {code}", hook=hook.label, code=code)
            if self._failed(code):
                return
        self._next()
