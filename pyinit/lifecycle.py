"""The shutdown state machine, driven by the supervisor's loop.

    STARTING --pre-start hooks done--> RUNNING
    RUNNING --stop signal (T0)--> DRAINING   readiness off, pre-stop hooks, delay
    DRAINING --delay over (or, with --drain-quiet, traffic quiet) and hooks done,
             or a second stop signal--> STOPPING
    STOPPING                                 stop sent; the kill deadline SIGKILLs the tree (with -c: the child)
    any --main child exited--> FINISHING     sweep leftovers (not with -c), post-stop hooks
    FINISHING --> DONE                       exit with the child's (remapped) code

The state decides what a signal means: a stop signal starts the drain in
RUNNING, cuts the delay short in DRAINING, and is forwarded like any other
signal in STOPPING. DRAINING ends when both of its gates (the delay and the
pre-stop hooks) are open; with --drain-quiet the delay's gate also opens once
the watched ports have gone quiet (``pyinit.traffic``), the delay being the
maximum. From T0 until the child exits (or, at the latest, 2 s after the stop
was passed on), any delay polls that watch every 100 ms, so the timeline can
say when the traffic stopped and what came late.

Every transition writes one log line; after T0 each carries its offset from
T0, so the log *is* the timeline an operator reads when chasing 502s.
"""

from __future__ import annotations

import enum
import os
import signal
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Callable

from pyinit import budget, tree
from pyinit.children import Children
from pyinit.config import Config
from pyinit.hooks import Hook, HookChain, HookRunner
from pyinit.log import DEBUG, INFO, Log
from pyinit.readiness import Readiness
from pyinit.signals import signal_name
from pyinit.spawn import ExecError, SpawnOptions
from pyinit.timers import Timers

if TYPE_CHECKING:  # imported for real only when a watch starts, at T0
    from pyinit.traffic import Watch


class State(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    DRAINING = "draining"
    STOPPING = "stopping"
    FINISHING = "finishing"
    DONE = "done"


class Lifecycle:
    """The life of the main child, from pre-start hooks to the exit code.

    It gets exactly what it uses: the checked config, the log, the process
    table, the clock, readiness, and the hook runner. ``take_tty`` says
    whether pyinit released a terminal for the child to take.
    """

    def __init__(
        self,
        config: Config,
        log: Log,
        children: Children,
        timers: Timers,
        readiness: Readiness,
        hooks: HookRunner,
        *,
        take_tty: bool = False,
    ) -> None:
        self.config = config
        self.log = log
        self._children = children
        self._timers = timers
        self._readiness = readiness
        self._hooks = hooks
        self._take_tty = take_tty
        self.state = State.STARTING
        self.child_pid: int | None = None
        #: The main child's pid, kept after it exits for the post-stop hooks' PYINIT_CHILD_PID.
        self._spawned_pid: int | None = None
        #: What the kill deadline SIGKILLed: dying already, so the sweep leaves it be.
        self._killed: frozenset[int] = frozenset()
        self.child_status: int | None = None
        self.exit_code: int | None = None
        self.stop_signal: int | None = None
        self._chains: list[HookChain] = []
        self._pre_stop: HookChain | None = None
        #: Signals whose ``--on`` hooks are running: a repeat folds into the run under way,
        #: as the kernel folds a repeated pending signal.
        self._on_running: set[int] = set()
        self._delay_over = False
        self._hooks_done = False
        self._after_sweep: Callable[[], None] | None = None
        self._watch: Watch | None = None

    # -- starting -----------------------------------------------------------

    def begin(self) -> None:
        if self.config.pre_start:
            self._run_chain(self.config.pre_start, None, self._pre_start_done, stop_on_failure=True)
        else:
            self._spawn_child()

    def _pre_start_done(self, status: int) -> None:
        if status:
            self.log.error("start_aborted", f"a pre-start hook failed ({status}): the child is not started")
            self._finish(status, then=self._done)
        else:
            self._spawn_child()

    def _spawn_child(self) -> None:
        config = self.config
        try:
            options = SpawnOptions(
                user=config.user,
                take_tty=self._take_tty,
                new_session=not config.single_child,
                socket_activated=True,
            )
            self.child_pid = self._children.start(config.command, options, self._child_exited)
        except ExecError as exc:
            self.log.error("exec_failed", str(exc), code=exc.code)
            self._child_exited(exc.code)
            return
        self._spawned_pid = self.child_pid
        self.state = State.RUNNING
        os.chdir("/")  # hold no mount busy; hooks get the original cwd explicitly
        self._readiness.up()
        self.log.debug("child_started", f"started pid {self.child_pid}: {' '.join(config.command)}", pid=self.child_pid)

    # -- signals ------------------------------------------------------------

    def on_signal(self, number: int, arrived: float) -> None:
        """Act on ``number``, which the loop collected at ``arrived`` (monotonic): T0, if it starts the stop."""
        is_stop = number == self.config.stop_signal
        if self.state is State.STARTING:
            if is_stop or number == signal.SIGINT:
                self._abort_start(number, arrived)
            else:
                self.log.info("signal_dropped", f"{signal_name(number)} dropped: no child yet")
        elif self.state in (State.FINISHING, State.DONE):
            self.log.debug("signal_dropped", f"{signal_name(number)} dropped: the child has exited")
        elif is_stop and self.state is State.RUNNING:
            self._drain(number, arrived)
        elif is_stop and self.state is State.DRAINING:
            self.log.info("delay_cut", f"second {signal_name(number)}: cutting the pre-stop delay short")
            self._stop(cut=True)
        elif not is_stop and number in self._on_running:
            self.log.debug("signal_folded", f"{signal_name(number)} folded into its running --on hooks")
        elif not is_stop and number in self.config.on_signal:
            self._on_running.add(number)
            self._run_chain(self.config.on_signal[number], number, lambda _: self._on_hooks_done(number))
        else:
            self._forward(number)

    def _on_hooks_done(self, number: int) -> None:
        self._on_running.discard(number)
        self._forward(number)

    def _forward(self, number: int) -> None:
        if self.child_pid is not None:
            self._children.forward(number, self.child_pid, timeline=self.log.t0 is not None)

    def _abort_start(self, number: int, arrived: float) -> None:
        self.log.t0 = arrived
        self.stop_signal = number
        self.log.info("start_aborted", f"{signal_name(number)} received during pre-start: the child is not started")
        self._finish(128 + number, then=self._done)

    # -- the shutdown sequence ------------------------------------------------

    def _drain(self, number: int, arrived: float) -> None:
        self.log.t0 = arrived
        self.stop_signal = number
        self.state = State.DRAINING
        self._readiness.down()
        delay, quiet = self.config.pre_stop_delay, self.config.drain_quiet
        hooks = self.config.pre_stop_hooks()
        extra = f", {len(hooks)} pre-stop hook(s)" if hooks else ""
        until = f" at most, until traffic is quiet for {budget.seconds(quiet)}" if quiet is not None else ""
        self.log.info(
            "stop_requested",
            f"{signal_name(number)} received: readiness off, pre-stop delay {budget.seconds(delay)}{until}{extra}",
            signal=signal_name(number),
            delay=delay,
            drain_quiet=quiet,
        )
        self._delay_over = delay <= 0
        self._hooks_done = not hooks
        if not self._delay_over:
            self._timers.set("delay", delay, self._delay_elapsed, since=arrived)
            self._watch_traffic(arrived)
        if hooks:
            self._pre_stop = self._run_chain(hooks, number, self._pre_stop_done)
        self._maybe_stop()

    # -- the traffic watch: from T0 until the child exits or the late window closes

    def _watch_traffic(self, t0: float) -> None:
        from pyinit import traffic  # the netlink reader loads only when a watch starts

        assert self.child_pid is not None
        config = self.config
        settings = traffic.Settings(
            delay=config.pre_stop_delay,
            quiet=config.drain_quiet,
            minimum=config.drain_min,
            ports=config.drain_ports,
            ignore=config.drain_ignore,
            exclude=None if config.ready_port is None else config.ready_port[1],
            uid=os.getuid() if config.user is None else config.user.uid,
        )
        self._watch = traffic.open_watch(self.log, settings, self.child_pid, t0)
        if self._watch is not None:
            self._timers.set("traffic", traffic.POLL_INTERVAL, self._poll_traffic)

    def _poll_traffic(self) -> None:
        from pyinit.traffic import POLL_INTERVAL

        watch = self._watch
        assert watch is not None
        if not watch.poll() or watch.late_window_over():
            self._end_watch()
            return
        self._timers.set("traffic", POLL_INTERVAL, self._poll_traffic)
        self._maybe_stop()

    def _quiet(self) -> bool:
        return self._watch is not None and self._watch.quiet()

    def _end_watch(self) -> None:
        self._timers.cancel("traffic")
        if self._watch is not None:
            self._watch.finish()
            self._watch = None

    # -- passing the stop on --------------------------------------------------

    def _delay_elapsed(self) -> None:
        self._delay_over = True
        waiting = "; waiting for the pre-stop hooks" if not self._hooks_done else ""
        self.log.info("delay_over", f"pre-stop delay over{waiting}")
        self._maybe_stop()

    def _pre_stop_done(self, status: int) -> None:
        self._hooks_done = True
        self.log.info("pre_stop_done", "pre-stop hooks done" + (f" (one failed: {status})" if status else ""))
        self._maybe_stop()

    def _maybe_stop(self) -> None:
        if self.state is State.DRAINING and self._hooks_done and (self._delay_over or self._quiet()):
            self._stop()

    def _stop(self, *, cut: bool = False) -> None:
        assert self.stop_signal is not None and self.child_pid is not None
        self.state = State.STOPPING
        self._timers.cancel("delay")
        if self._pre_stop is not None:
            self._pre_stop.cancel()
        if self._watch is not None:
            self._watch.stopped(cut=cut)
        command = self.config.stop_command
        if command:
            self.log.info("stop_command", f"running stop command {command!r}")
            self._run_chain((Hook.command("stop", command),), self.stop_signal, lambda _: None)
        else:
            self._children.forward(self.stop_signal, self.child_pid, timeline=True)
        timeout = self.config.kill_timeout
        if timeout is not None:
            if not self.config.single_child:
                tree.prepare()  # now, so that the kill does not wait for an import when the deadline comes
            self.log.info("kill_deadline", f"waiting up to {budget.seconds(timeout)} for the child to exit")
            self._timers.set("kill", timeout, self._kill)

    def _kill(self) -> None:
        if self.config.single_child:
            # -c asked for "only my direct child": the deadline kills it, not what it started.
            assert self.child_pid is not None
            os.kill(self.child_pid, signal.SIGKILL)
            self.log.info("killed", f"kill timeout passed: sent SIGKILL to pid {self.child_pid}", pids=[self.child_pid])
            return
        self._killed = frozenset(
            self._signal_tree(signal.SIGKILL, "killed", "kill timeout passed: sent SIGKILL to", empty="nothing")
        )

    # -- the end ------------------------------------------------------------

    def _child_exited(self, code: int) -> None:
        self.child_pid = None
        self._timers.cancel("delay")
        self._timers.cancel("kill")
        level = INFO if self.stop_signal is not None else DEBUG
        if self.log.t0 is None:
            self.log.t0 = time.monotonic()
        self.log.emit(level, "child_exited", f"child exited {code}", code=code)
        self._end_watch()
        self._finish(code, then=self._post_stop)

    def _finish(self, status: int, then: Callable[[], None]) -> None:
        """The child is gone (or never started): drop readiness, stop all hooks, sweep."""
        self.child_status = status
        self.state = State.FINISHING
        self._readiness.down()
        for chain in self._chains:
            chain.cancel()
        self._sweep(then)

    def _post_stop(self) -> None:
        if not self.config.post_stop:
            self._done()
            return
        self.log.info("post_stop", f"running {len(self.config.post_stop)} post-stop hook(s)")
        self._run_chain(self.config.post_stop, self.stop_signal, lambda _: self._sweep(self._done))

    def _done(self) -> None:
        assert self.child_status is not None
        self.exit_code = self.config.remap_exit.get(self.child_status, self.child_status)
        self.state = State.DONE
        remapped = f" (child exited {self.child_status})" if self.exit_code != self.child_status else ""
        level = INFO if self.stop_signal is not None or remapped else DEBUG
        self.log.emit(level, "exit", f"exiting {self.exit_code}{remapped}", code=self.exit_code)

    # -- sweeping leftovers ---------------------------------------------------

    def _sweep(self, then: Callable[[], None]) -> None:
        """TERM whatever descendants remain, KILL them after a short deadline, then go on.

        Completion is noticed by the reaper (``on_reaped``): no polling. With -c
        nothing is swept, as under dumb-init: whoever chose it asked that only
        the child be signalled, and what it left behind is theirs.
        """
        if self.config.single_child or not self._children.any_left():
            then()
            return
        self._after_sweep = then
        self._signal_tree(signal.SIGTERM, "leftovers_term", "sent SIGTERM to leftover", exclude=self._killed)
        self._timers.set("leftovers", budget.LEFTOVER_TIMEOUT, self._kill_leftovers)

    def _kill_leftovers(self) -> None:
        self._signal_tree(signal.SIGKILL, "leftovers_kill", "sent SIGKILL to leftover")
        self._timers.set("leftovers", budget.KILL_WAIT, self._give_up_sweep)

    def _signal_tree(
        self,
        number: int,
        event: str,
        what: str,
        *,
        exclude: frozenset[int] = frozenset(),
        empty: str | None = None,
    ) -> dict[int, str]:
        """Signal every descendant and log the ones reached (or ``empty``, if given, when none was)."""
        reached = tree.signal_descendants(number, exclude)
        labels = list(reached.values())
        if labels or empty is not None:
            self.log.info(event, f"{what} {', '.join(labels) or empty}", pids=list(reached))
        return reached

    def _give_up_sweep(self) -> None:
        self.log.error("leftovers_stuck", "descendants survived SIGKILL (uninterruptible?): going on without them")
        self._end_sweep()

    def on_reaped(self) -> None:
        """After each reap: a sweep is over once pyinit has no child left."""
        if self._after_sweep is not None and not self._children.any_left():
            self._end_sweep()

    def _end_sweep(self) -> None:
        self._timers.cancel("leftovers")
        then, self._after_sweep = self._after_sweep, None
        if then is not None:
            then()

    # -- hooks ------------------------------------------------------------

    def _run_chain(
        self,
        hooks: tuple[Hook, ...],
        number: int | None,
        on_done: Callable[[int], None],
        *,
        stop_on_failure: bool = False,
    ) -> HookChain:
        def finished(status: int) -> None:
            self._chains.remove(chain)
            on_done(status)

        chain = HookChain(self._hooks, hooks, self._hook_env(number), finished, stop_on_failure=stop_on_failure)
        self._chains.append(chain)
        chain.start()
        return chain

    def _hook_env(self, number: int | None) -> Mapping[str, str]:
        env = {
            "PYINIT_SIGNAL": signal_name(number) if number else "",
            "PYINIT_CHILD_PID": str(self._spawned_pid or ""),
        }
        if self.child_status is not None:
            env["PYINIT_EXIT_CODE"] = str(self.child_status)
        return env
