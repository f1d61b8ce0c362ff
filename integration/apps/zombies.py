"""An app that leaks orphans: ``zombies.py SECONDS``.

For SECONDS it keeps forking a child that forks a grandchild and exits. The
app reaps its own children, but each grandchild is orphaned, re-parented to
PID 1 (or the nearest subreaper) and exits shortly after: without an init that
reaps, each one stays a zombie. It prints ``halfway: ...`` half-way through,
then ``leaked N orphans``, and idles until it is stopped.
"""

import os
import sys
import time

seconds = float(sys.argv[1])
began = time.monotonic()
halfway = False
leaked = 0
while time.monotonic() < began + seconds:
    if not halfway and time.monotonic() >= began + seconds / 2:
        print(f"halfway: {leaked} orphans so far", flush=True)
        halfway = True
    pid = os.fork()
    if pid == 0:
        if os.fork() == 0:
            time.sleep(0.05)
            os._exit(0)
        os._exit(0)
    os.waitpid(pid, 0)
    leaked += 1
    time.sleep(0.1)
print(f"leaked {leaked} orphans", flush=True)
while True:
    time.sleep(0.5)
