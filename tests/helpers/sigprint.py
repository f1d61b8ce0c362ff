"""A child that reports every signal it receives, in the manner of dumb-init's tests.

Prints ``ready pid=N pgid=N sid=N`` once its handlers are installed, then one
``signal NAME`` line per signal (a real-time one as ``SIGRTMIN+N``, N from 0).
``--ignore SIG`` ignores one, ``--exit-on SIG:CODE`` exits with CODE when SIG
arrives, ``--drain SIG:SECONDS`` prints ``draining`` and exits 0 after SECONDS.
``--fork`` also starts a second copy in the same process group whose lines read
``kid signal NAME``. It runs until told to stop.
"""

import argparse
import os
import signal
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--ignore", action="append", default=[])
parser.add_argument("--exit-on", action="append", default=[])
parser.add_argument("--drain", action="append", default=[])
parser.add_argument("--fork", action="store_true")
args = parser.parse_args()


def number(name: str) -> int:
    return int(name) if name.isdigit() else getattr(signal, "SIG" + name.upper().removeprefix("SIG"))


exits = {number(s): int(c) for s, c in (item.split(":") for item in args.exit_on)}
drains = {number(s): float(t) for s, t in (item.split(":") for item in args.drain)}
ignored = {number(s) for s in args.ignore}
pending_exit: list = []


role = ""


def say(line: str) -> None:
    os.write(1, (line + "\n").encode())  # one write per line: two processes share the pipe


def name_of(signum: int) -> str:
    return f"SIGRTMIN+{signum - signal.SIGRTMIN}" if signum >= signal.SIGRTMIN else signal.Signals(signum).name


def handler(signum: int, frame: object) -> None:
    say(f"{role}signal {name_of(signum)}")
    if signum in exits:
        sys.exit(exits[signum])
    if signum in drains and not pending_exit:
        say("draining")
        pending_exit.append(time.monotonic() + drains[signum])


for n in [*range(1, 32), *range(signal.SIGRTMIN, signal.SIGRTMAX + 1)]:
    if n in (signal.SIGKILL, signal.SIGSTOP):
        continue
    if n in ignored:
        signal.signal(n, signal.SIG_IGN)
    elif n != signal.SIGCHLD:
        signal.signal(n, handler)

if args.fork and os.fork() == 0:
    role = "kid "
say(f"{role}ready pid={os.getpid()} pgid={os.getpgrp()} sid={os.getsid(0)}")
while True:
    if pending_exit:
        remaining = pending_exit[0] - time.monotonic()
        if remaining <= 0:
            say("drained")
            sys.exit(0)
        time.sleep(min(remaining, 0.05))
    else:
        time.sleep(0.05)  # not pause(): a signal landing just before it would be missed
