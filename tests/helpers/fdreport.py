"""A child that shows which descriptors it got, then uses them.

    fdreport.py WHO [--use]

Prints one line ``WHO fds {JSON}``: for every open descriptor above 2, what it
refers to (from /proc/self/fd: a path, ``pipe:[inode]`` or ``socket:[inode]``)
and its flags (from /proc/self/fdinfo, octal, as the kernel shows them). With
``--use`` it then reads a line from fd 3 (a pipe), appends ``written by WHO``
to fd 5 (a file), accepts one connection on fd 200 (a listening socket),
answers it with the line it read, and prints ``WHO used``.
"""

import json
import os
import select
import socket
import sys

who = sys.argv[1]
listing = f"/proc/{os.getpid()}/fd"
targets = {}
for name in os.listdir(listing):
    try:
        targets[int(name)] = os.readlink(f"{listing}/{name}")
    except FileNotFoundError:  # listdir's own descriptor, closed by now
        pass
seen = {}
for fd, target in targets.items():
    if fd > 2 and target != listing:
        with open(f"/proc/self/fdinfo/{fd}") as info:
            flags = next(line.split()[1] for line in info if line.startswith("flags:"))
        seen[fd] = {"target": target, "flags": flags}
print(f"{who} fds {json.dumps(seen, sort_keys=True)}", flush=True)

if "--use" in sys.argv[2:]:
    line = b""
    while not line.endswith(b"\n"):
        select.select([3], [], [])
        line += os.read(3, 100)
    os.write(5, f"written by {who}\n".encode())
    listener = socket.socket(fileno=200)
    connection, _ = listener.accept()
    connection.sendall(line)
    connection.close()
    print(f"{who} used", flush=True)
