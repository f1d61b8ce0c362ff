"""Entry point: block every signal first, then parse and run.

Blocking happens before click (or anything else) is imported, so the window in
which a signal could be delivered the default way is as short as it can be.
"""

from __future__ import annotations

import sys


def main() -> None:
    from pyinit import signals

    signals.block_all()
    signals.reset_dispositions()
    from pyinit.cli import run

    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
