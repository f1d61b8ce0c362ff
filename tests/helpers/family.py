"""A child that leaves a grandchild behind, then becomes another program.

    family.py [--setsid] [--ignore-term] [--pidfile PATH] PROGRAM [ARG...]

Forks a grandchild that (with ``--setsid``) escapes into its own session and
process group, so that killpg() on the child's group cannot reach it, and
(with ``--ignore-term``) ignores SIGTERM, so that only SIGKILL ends it. The
grandchild writes its pid to PATH, prints ``grandchild pid=N pgid=N sid=N`` and
sleeps until killed. Once the grandchild is set up, the child execs PROGRAM
(typically sigprint.py), so its own ``ready`` line also means the grandchild
is in place.
"""

import os
import signal
import sys
import time

args = sys.argv[1:]
setsid = ignore_term = False
pidfile = None
while args and args[0].startswith("--"):
    option = args.pop(0)
    if option == "--setsid":
        setsid = True
    elif option == "--ignore-term":
        ignore_term = True
    elif option == "--pidfile":
        pidfile = args.pop(0)
    else:
        sys.exit(f"family.py: unknown option {option}")
if not args:
    sys.exit("family.py: no PROGRAM given")

read_end, write_end = os.pipe()
if os.fork() == 0:
    os.close(read_end)
    if setsid:
        os.setsid()
    if ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if pidfile:
        with open(pidfile + ".tmp", "w") as file:
            file.write(str(os.getpid()))
        os.rename(pidfile + ".tmp", pidfile)
    print(f"grandchild pid={os.getpid()} pgid={os.getpgrp()} sid={os.getsid(0)}", flush=True)
    os.write(write_end, b"x")
    os.close(write_end)
    while True:
        time.sleep(60)

os.close(write_end)
os.read(read_end, 1)  # the grandchild is in place
os.close(read_end)
os.execv(args[0], args)
