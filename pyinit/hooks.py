"""Trap-like hooks: commands pyinit runs at fixed points of the lifecycle.

Each hook is an ordinary supervised child, started and reaped by the same loop
as the main child: while a hook runs, signals are still forwarded and zombies
still reaped. A chain runs its hooks one after another and reports once.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from pyinit.spawn import ExecError

if TYPE_CHECKING:
    from pyinit.supervisor import Supervisor

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
    interpreter). Dotfiles are skipped, so a ``.keep`` placeholder is harmless;
    anything else that cannot be executed is a configuration error.
    """
    folder = os.path.join(hooks_dir, f"{phase}.d")
    if not os.path.isdir(folder):
        return ()
    hooks = []
    for name in sorted(os.listdir(folder)):
        if name.startswith("."):
            continue
        path = os.path.join(folder, name)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise ValueError(f"{path} is not an executable file")
        hooks.append(Hook(phase, f"{phase} hook {path}", (path,)))
    return tuple(hooks)


class HookChain:
    """Runs ``hooks`` in order; calls ``on_done`` with the last failing status (0 if none).

    With ``stop_on_failure`` (pre-start), the first failure ends the chain.
    """

    def __init__(
        self,
        supervisor: Supervisor,
        hooks: tuple[Hook, ...],
        env: Mapping[str, str],
        on_done: Callable[[int], None],
        *,
        stop_on_failure: bool = False,
    ) -> None:
        self._sup = supervisor
        self._hooks = list(hooks)
        self._env = env
        self._on_done = on_done
        self._stop_on_failure = stop_on_failure
        self._status = 0
        self._cancelled = False
        self._pid: int | None = None

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
            config = self._sup.config
            env = {**os.environ, **self._env, "PYINIT_PHASE": hook.phase}
            try:
                self._pid = self._sup.start(
                    hook.argv,
                    lambda code, hook=hook: self._exited(hook, code),
                    env=env,
                    cwd=config.cwd,
                    user=config.user,
                    quiet_stdin=True,
                )
            except ExecError as exc:
                self._sup.log.error("hook_failed", f"{hook.label}: {exc}", hook=hook.label, code=exc.code)
                if self._failed(exc.code):
                    return
                continue
            self._sup.log.debug(
                "hook_started", f"{hook.label} started as pid {self._pid}", hook=hook.label, pid=self._pid
            )
            if config.hook_timeout is not None:
                self._sup.timers.set(
                    f"hook:{self._pid}",
                    config.hook_timeout,
                    lambda hook=hook, pid=self._pid: self._timed_out(hook, pid),
                )
            return

    def _failed(self, code: int) -> bool:
        """Record a failure; True when it ends the chain."""
        self._status = code
        if self._stop_on_failure and not self._cancelled:
            self._on_done(code)
            return True
        return False

    def _timed_out(self, hook: Hook, pid: int) -> None:
        timeout = self._sup.config.hook_timeout
        self._sup.log.error(
            "hook_timeout",
            f"{hook.label} timed out after {timeout:g}s: killing its process group {pid}",
            hook=hook.label,
            pid=pid,
        )
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _exited(self, hook: Hook, code: int) -> None:
        self._sup.timers.cancel(f"hook:{self._pid}")
        self._pid = None
        if code == 0:
            self._sup.log.debug("hook_done", f"{hook.label} succeeded", hook=hook.label)
        else:
            self._sup.log.error("hook_failed", f"{hook.label} failed with exit code {code}", hook=hook.label, code=code)
            if self._failed(code):
                return
        self._next()
