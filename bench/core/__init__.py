"""bench/core: pyinit beside tini and dumb-init, all three as PID 1, in one run.

    python -m bench.core        # from the repository root, as root; about a minute

Needs root (for ``unshare --pid``), gcc, and Debian's tini and dumb-init
(``apt-get install -y tini dumb-init gcc``). ``--help`` lists the knobs.

Each init runs as PID 1 of its own PID namespace
(``unshare --pid --fork --mount-proc INIT -- CHILD``) and is measured from
outside, through its host pid (the child of the ``unshare`` process):

* forwarding latency (forwarding.py): the time from ``kill(init, SIGUSR1)`` to
  the child's handler running. The child (helpers/sigecho.c) writes
  CLOCK_MONOTONIC at handler entry to a pipe; CLOCK_MONOTONIC is one clock
  across PID namespaces, so the sender subtracts the time it took right before
  kill(). One signal is in flight at a time (the next is sent only once the
  reply is read), so none coalesce. The inits take turns signal by signal, in
  a rotating order.
* burst reaping (reaping.py): helpers/burst.c forks 2,000 grandchildren through
  a middle process that exits at once, so all are orphans re-parented to the
  init, each blocked on a pipe the child holds. Closing it makes all 2,000 exit
  at the same moment; the time is from then until the init has no child left
  but the main one (a tight read of /proc/INIT/task/*/children, which lists
  zombies until they are reaped), confirmed by a /proc scan for Z-state
  processes whose PPid is the init. That time is mostly the kernel tearing down
  2,000 processes, so a second kind of burst isolates the init's share: the
  init is stopped (SIGSTOP) while the 2,000 exit, and the clock starts when it
  is continued (SIGCONT) with all 2,000 zombies waiting. The inits take turns,
  burst by burst.
* idle wake-ups (forwarding.py): voluntary_ctxt_switches of the init (all its
  threads) over 10 s while the child sleeps (blocked reading its stdin), every
  init in the same window.
* RSS (forwarding.py): VmRSS of the init while the child sleeps.
* startup (startup.py): the wall time of ``INIT -- true``, as PID 1 under
  unshare (the number the target is about; ``unshare`` alone is reported too,
  to subtract) and plain, median over 20 rounds in which every case takes its
  turn.

pyinit runs as the installed console script of the interpreter running this
package (not a pyenv shim, which puts a shell and ``pyenv exec`` in front);
``--pyinit`` picks another command, e.g. ``--pyinit "python -m pyinit"``.
``python -m pyinit`` startup gets a row of its own. So do RSS and startup of
pyinit installed the way an image would (``pip install .``, not editable) into
a fresh venv, since the developer's interpreter may load .pth files at every
start that a container never has (``--no-clean-venv`` skips this; it needs pip
and the package index for click and psutil).

The machine is shared and noisy, so every number is a median (or percentile)
from this one run, and each ratio compares numbers measured in the same run.
A missed target is reported, not an error: the exit status is non-zero only
when something crashed (a helper failed, an init died, a reply never came).
"""
