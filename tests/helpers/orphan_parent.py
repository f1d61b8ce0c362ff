"""An orphan tells who adopted it: prints ``adopted-by PPID pid=PID``, then exits.

This process forks a middle one, which forks the orphan and exits at once.
The orphan hears of that exit from the kernel (its parent-death signal comes
after it is re-parented), so the parent it prints is its adopter, with no
pause for guessing. This process exits once the orphan has spoken, so the
init's main child outlives the report.
"""

import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1

read_end, write_end = os.pipe()
middle = os.fork()
if middle == 0:
    me = os.getpid()
    if os.fork() == 0:
        os.close(read_end)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
        if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGUSR1, 0, 0, 0) != 0:
            os.write(2, f"prctl: {os.strerror(ctypes.get_errno())}\n".encode())
            os._exit(1)
        if os.getppid() == me:  # not re-parented yet: the signal is still to come
            signal.sigwait({signal.SIGUSR1})
        os.write(1, f"adopted-by {os.getppid()} pid={os.getpid()}\n".encode())
        os._exit(0)
    os._exit(0)
os.close(write_end)
os.waitpid(middle, 0)
os.read(read_end, 1)  # EOF: the orphan has printed and is exiting
