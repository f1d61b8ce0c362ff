"""A small HTTP app for the docker stop tests: serves until its stop signal arrives.

``web.py PORT [--on-term exit0|default]`` serves ``GET /`` on 127.0.0.1:PORT
(threaded, so a slow client delays no one). When SIGTERM arrives it prints
``got SIGTERM at <unix time>``, so a test on the same host can tell *when* the
stop reached the app, then exits 0 (``exit0``) or dies of the signal (``default``:
the shell's 143).
"""

import argparse
import os
import signal
import threading
import time
from http.server import ThreadingHTTPServer

from quiet_http import QuietHandler

parser = argparse.ArgumentParser()
parser.add_argument("port", type=int)
parser.add_argument("--on-term", choices=["exit0", "default"], default="exit0")
args = parser.parse_args()


class Handler(QuietHandler):
    def do_GET(self) -> None:
        self.answer(f"ok {os.getpid()}")


def on_term(signum: int, frame: object) -> None:
    print(f"got SIGTERM at {time.time():.3f}", flush=True)
    if args.on_term == "exit0":
        os._exit(0)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


signal.signal(signal.SIGTERM, on_term)
server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
server.daemon_threads = True
threading.Thread(target=server.serve_forever, daemon=True).start()
print(f"serving on 127.0.0.1:{args.port}", flush=True)
while True:
    time.sleep(0.1)
