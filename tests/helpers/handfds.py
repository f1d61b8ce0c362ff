"""Hand descriptors to a program under chosen numbers, as systemd or podman do, then exec it.

    handfds.py [--activate NAME[:NAME...]] SRC:DST [SRC:DST...] -- PROGRAM [ARG...]

Each SRC, a descriptor this process inherited, becomes DST: inheritable, and
with its open file description (so its status flags) untouched. With
``--activate`` the environment announces the descriptors from 3 on as
socket-activated, the way systemd does it: ``LISTEN_FDS``, ``LISTEN_FDNAMES``
and ``LISTEN_PID`` set to this process's own pid, which the exec keeps. So
PROGRAM starts exactly as systemd would start it.
"""

import fcntl
import os
import sys

args = sys.argv[1:]
names = None
if args and args[0] == "--activate":
    names = args[1].split(":")
    args = args[2:]
split = args.index("--")
moves = [tuple(int(part) for part in item.split(":")) for item in args[:split]]
program = args[split + 1 :]

# Out of the way first, so that no SRC is overwritten by an earlier DST.
parked = [(fcntl.fcntl(source, fcntl.F_DUPFD, 1000), target) for source, target in moves]
for source, _ in moves:
    os.close(source)
for spare, target in parked:
    os.dup2(spare, target)
    os.close(spare)
if names is not None:
    os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS=str(len(names)), LISTEN_FDNAMES=":".join(names))
os.execvp(program[0], program)
