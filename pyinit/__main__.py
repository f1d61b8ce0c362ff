"""Entry point: block every signal first, then parse and run.

Blocking happens before click (or anything else) is imported, so the window in
which a signal could be delivered the default way is as short as it can be.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    from pyinit import signals

    signals.block_all()
    signals.reset_dispositions()
    _fill_closed_stdio()
    from pyinit.cli import run

    code = run(sys.argv[1:])
    # The child is gone and reaped: nothing is left that interpreter shutdown
    # (module teardown, the readiness thread) could still do for anyone, and it
    # costs tens of milliseconds of every container stop.
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:  # None: started with that descriptor closed
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
    os._exit(code)


def _fill_closed_stdio() -> None:
    """Open /dev/null on any of descriptors 0, 1 and 2 that were closed at start.

    Otherwise the next file or socket pyinit opens takes that number: the
    probe's listener would become the child's stdout, or a log line would be
    written into a --ready-check connection. Python opens it close-on-exec, so
    the child still finds the descriptor closed, as under tini and dumb-init.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            try:
                os.open(os.devnull, os.O_RDWR)  # the lowest free number: this one
            except OSError:
                return  # no /dev/null: nothing better to put there


if __name__ == "__main__":
    main()
