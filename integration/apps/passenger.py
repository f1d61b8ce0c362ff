"""A stand-in for Passenger: USR1 is its graceful stop, TERM drops everything.

``passenger.py PORT [SECONDS]`` serves ``GET /slow`` (answers after SECONDS,
default 3) and ``GET /inflight`` (how many /slow requests are running) on
127.0.0.1:PORT.

- SIGUSR1: stop accepting, let every running request finish, exit 0.
- SIGTERM: exit 1 at once, cutting every running request off, as Passenger
  does on TERM: what dumb-init's ``--rewrite 15:10`` exists to avoid.
"""

import os
import signal
import sys
import threading
import time
from http.server import ThreadingHTTPServer

from quiet_http import QuietHandler

PORT = int(sys.argv[1])
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
inflight = 0
lock = threading.Lock()
drain = threading.Event()


class Handler(QuietHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        global inflight
        if self.path == "/inflight":
            self.answer(str(inflight))
            return
        with lock:
            inflight += 1
        try:
            time.sleep(SECONDS)
            self.answer(f"done {self.path}")
        finally:
            with lock:
                inflight -= 1


def on_usr1(signum: int, frame: object) -> None:
    print(f"SIGUSR1: draining {inflight} request(s)", flush=True)
    drain.set()


def on_term(signum: int, frame: object) -> None:
    print(f"SIGTERM: dropping {inflight} request(s)", flush=True)
    os._exit(1)


signal.signal(signal.SIGUSR1, on_usr1)
signal.signal(signal.SIGTERM, on_term)
server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
server.daemon_threads = False  # server_close() waits for the running requests
server.block_on_close = True
threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}).start()
print(f"serving on 127.0.0.1:{PORT}", flush=True)
drain.wait()
server.shutdown()  # no new requests
server.server_close()  # joins the request threads: every running request ends
print("drained", flush=True)
sys.exit(0)
