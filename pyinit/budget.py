"""The grace budget: the one rule that keeps pyinit's shutdown inside the platform's.

The platform (``terminationGracePeriodSeconds``, ``docker stop -t``, ECS
``stopTimeout``) SIGKILLs the container when its grace period runs out. If
pyinit is still draining then, the post-stop hooks never run and the last log
line is never written. So pyinit plans its own kill deadline to fall first.
The CLI, pyinit-doctor and the Kubernetes example's test use this rule (the
first two through ``plan_for``); the README states it once.
"""

from __future__ import annotations

from pyinit.config import Config

#: Once the main child has exited, what is left gets SIGTERM and this long before SIGKILL...
LEFTOVER_TIMEOUT = 1.0
#: ...and then this long to die, which SIGKILLed processes do in milliseconds, before pyinit goes
#: on without what survives even that (a process in uninterruptible sleep).
KILL_WAIT = 0.25
#: The longest one sweep of leftovers can take.
SWEEP = LEFTOVER_TIMEOUT + KILL_WAIT
#: Slack for reaping, logging and exiting after the last hook.
EXIT_MARGIN = 0.5


class BudgetError(ValueError):
    """The configured times cannot fit; the message names every number."""


def seconds(value: float) -> str:
    return f"{value:g}s"


def around_the_kill(
    *, pre_stop_delay: float, pre_stop_hooks: int, post_stop_hooks: int, hook_timeout: float | None
) -> tuple[float, float]:
    """The longest the sequence can take before the stop is sent, and after the child has exited.

    The stop is sent once the delay has passed *and* the pre-stop hooks are
    done, so the time before it is the longer of the two, not their sum. After
    the child exits come a sweep of its leftovers, the post-stop hooks, a second
    sweep of whatever those left (only when there are hooks), and the exit.
    """
    per_hook = hook_timeout or 0.0
    before_stop = max(pre_stop_delay, pre_stop_hooks * per_hook)
    sweeps = 2 if post_stop_hooks else 1
    return before_stop, sweeps * SWEEP + post_stop_hooks * per_hook + EXIT_MARGIN


def plan_kill_timeout(
    *,
    grace_period: float | None,
    pre_stop_delay: float = 0.0,
    pre_stop_hooks: int = 0,
    post_stop_hooks: int = 0,
    hook_timeout: float | None = None,
    kill_timeout: float | None = None,
) -> float | None:
    """Return the kill timeout to use, derived from the grace period when not given.

    Without a grace period, the kill timeout is whatever was given (None: wait
    for the child for as long as it takes, as dumb-init does).
    """
    if grace_period is None:
        return kill_timeout
    hooks = pre_stop_hooks + post_stop_hooks
    if hooks and hook_timeout is None:
        raise BudgetError(
            f"--grace-period {seconds(grace_period)}: {pre_stop_hooks} pre-stop and "
            f"{post_stop_hooks} post-stop hooks have no --hook-timeout, so they could outlast it"
        )
    before_stop, after_exit = around_the_kill(
        pre_stop_delay=pre_stop_delay,
        pre_stop_hooks=pre_stop_hooks,
        post_stop_hooks=post_stop_hooks,
        hook_timeout=hook_timeout,
    )
    room = grace_period - before_stop - after_exit
    parts = f"pre-stop {seconds(before_stop)} + post-stop {seconds(after_exit)}"
    if kill_timeout is None:
        if room <= 0:
            raise BudgetError(
                f"--grace-period {seconds(grace_period)} leaves no time to drain: {parts} already fill it"
            )
        return room
    if kill_timeout > room:
        raise BudgetError(
            f"--kill-timeout {seconds(kill_timeout)} does not fit in --grace-period "
            f"{seconds(grace_period)}: {parts} + kill {seconds(kill_timeout)} = "
            f"{seconds(before_stop + after_exit + kill_timeout)}"
        )
    return kill_timeout


def plan_for(config: Config, grace_period: float | None) -> float | None:
    """``plan_kill_timeout`` with a Config's delay, hooks and timeouts, inside ``grace_period``.

    pyinit plans in its own ``--grace-period``; the doctor plans in what the
    kubelet really leaves it, with the same numbers.
    """
    return plan_kill_timeout(
        grace_period=grace_period,
        pre_stop_delay=config.pre_stop_delay,
        pre_stop_hooks=len(config.pre_stop_hooks()),
        post_stop_hooks=len(config.post_stop),
        hook_timeout=config.hook_timeout,
        kill_timeout=config.kill_timeout,
    )
