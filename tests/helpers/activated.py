"""A socket-activated app, checking what sd_listen_fds() checks before it takes fd 3.

The sockets are the app's only if ``LISTEN_PID`` is its own pid. If not, it
prints ``refused LISTEN_PID=X pid=Y`` and exits 3. Otherwise it prints
``serving fds=N names=NAMES`` and answers every connection on fd 3 with
``hello from PID`` until it is killed.
"""

import os
import socket
import sys

listen_pid = os.environ.get("LISTEN_PID", "")
if listen_pid != str(os.getpid()):
    print(f"refused LISTEN_PID={listen_pid} pid={os.getpid()}", flush=True)
    sys.exit(3)
print(f"serving fds={os.environ.get('LISTEN_FDS')} names={os.environ.get('LISTEN_FDNAMES')}", flush=True)
listener = socket.socket(fileno=3)
while True:
    connection, _ = listener.accept()
    connection.sendall(f"hello from {os.getpid()}\n".encode())
    connection.close()
