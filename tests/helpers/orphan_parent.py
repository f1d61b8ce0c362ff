"""Print the parent pid of an orphan: who adopts it when its parent dies?"""

import os
import time

if os.fork() == 0:
    time.sleep(0.5)  # by now the middle process is gone and this one re-parented
    print(f"adopted-by {os.getppid()}", flush=True)
    os._exit(0)
os._exit(0)
