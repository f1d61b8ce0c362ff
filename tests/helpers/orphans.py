"""Leave N orphaned zombies for the init: each middle child forks a grandchild and exits.

The grandchildren exit at once; with their parents gone they are re-parented
to the nearest reaper (PID 1 or a subreaper), whose job it is to collect them.
Prints ``orphans N`` when all are made, then sleeps until killed.
"""

import os
import sys
import time

count = int(sys.argv[1])
for _ in range(count):
    middle = os.fork()
    if middle == 0:
        if os.fork() == 0:
            os._exit(0)
        os._exit(0)
    os.waitpid(middle, 0)
print(f"orphans {count}", flush=True)
while True:
    time.sleep(60)
