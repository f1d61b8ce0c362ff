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
    from pyinit.cli import run

    code = run(sys.argv[1:])
    # The child is gone and reaped: nothing is left that interpreter shutdown
    # (module teardown, the readiness thread) could still do for anyone, and it
    # costs tens of milliseconds of every container stop.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
