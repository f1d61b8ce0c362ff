"""An HTTP/1.1 app for the drain tests: keep-alive, IPv4 or IPv6, and a stop the test can time.

``web_app.py [--host H] [--linger S]`` binds a free port and prints
``serving port=N``. Every request gets 200 (keep-alive unless the client asks
for close). At SIGTERM it prints ``got SIGTERM at <CLOCK_MONOTONIC>`` (one
clock for the whole machine, PID namespaces included), keeps serving for
``--linger`` seconds (late requests still get answers), then exits 0.
``--undumpable`` makes the process non-dumpable, so that /proc hides its
descriptors from anyone without CAP_SYS_PTRACE.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--linger", type=float, default=0.0)
parser.add_argument("--undumpable", action="store_true")
args = parser.parse_args()
if args.undumpable:
    import ctypes

    PR_SET_DUMPABLE = 4
    ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    address_family = socket.AF_INET6 if ":" in args.host else socket.AF_INET


def on_term(signum: int, frame: object) -> None:
    print(f"got SIGTERM at {time.monotonic():.6f}", flush=True)
    threading.Timer(args.linger, os._exit, (0,)).start()


signal.signal(signal.SIGTERM, on_term)
server = Server((args.host, 0), Handler)
print(f"serving port={server.server_address[1]}", flush=True)
server.serve_forever(poll_interval=0.05)
