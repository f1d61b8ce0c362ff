"""bench/trickle: how many kubelet-style /live probes get through while clients trickle bytes at the port.

    python -m bench.trickle                       # the pyinit of this checkout
    python -m bench.trickle --tree /path/to/other/checkout --clients 32 100

The measurement of issue 13, item 5: pyinit serves ``--ready-port`` with a
child that sleeps; N clients each connect and send one byte of a request
header every 0.5 s, reconnecting at once whenever pyinit closes them (an
attacker does not give up). Meanwhile one prober sends ``GET /live`` every
0.1 s with a 1 s timeout, as the kubelet's defaults do, for ``--seconds``. The
result is probes answered 200 out of probes sent, for tricklers from the
prober's own address (127.0.0.1, as in the issue) and from another one
(127.0.0.2, as a remote attacker would be).

Loopback only. Numbers depend on the machine's load: run it a few times.
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench.rollout.controller import free_port

ROOT = Path(__file__).resolve().parent.parent
INTERVAL = 0.1  # the prober's period
TIMEOUT = 1.0  # the kubelet's default timeoutSeconds


@dataclass
class Result:
    clients: int
    source: str
    answered: int
    sent: int


def probe(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        connection.request("GET", "/live")
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


class Tricklers:
    """``count`` connections from ``source``, each sending one byte every half second until ``close``.

    A connection pyinit closes is opened again at once: an attacker does not
    give up. The tests use this too (tests/test_faults.py).
    """

    def __init__(self, port: int, count: int, source: str) -> None:
        self._port, self._source = port, source
        self._stop = threading.Event()
        self._sockets = [self._connect() for _ in range(count)]
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _connect(self) -> socket.socket | None:
        try:
            return socket.create_connection(
                ("127.0.0.1", self._port), timeout=TIMEOUT, source_address=(self._source, 0)
            )
        except OSError:
            return None

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            for index, sock in enumerate(self._sockets):
                if self._stop.is_set():
                    break  # reconnecting to a server that no longer answers takes a timeout each
                try:
                    if sock is None:
                        raise OSError
                    sock.send(b"G")
                except OSError:
                    if sock is not None:
                        sock.close()
                    self._sockets[index] = self._connect()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for sock in self._sockets:
            if sock is not None:
                sock.close()


def measure(tree: Path, clients: int, source: str, seconds: float) -> Result:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(tree)}
    init = subprocess.Popen(
        [sys.executable, "-m", "pyinit", "-q", "--ready-port", f"127.0.0.1:{port}", "--", "sleep", "3600"],
        cwd=tree,
        env=env,
    )
    try:
        deadline = time.monotonic() + 10
        while not probe(port):
            if time.monotonic() > deadline:
                raise SystemExit(f"pyinit from {tree} never answered on port {port}")
            time.sleep(0.05)
        tricklers = Tricklers(port, clients, source)
        time.sleep(1.0)  # let the tricklers settle in before the probes start counting
        sent = answered = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            began = time.monotonic()
            sent += 1
            answered += probe(port)
            time.sleep(max(0.0, INTERVAL - (time.monotonic() - began)))
        tricklers.close()
    finally:
        init.terminate()
        init.wait()
    return Result(clients, source, answered, sent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout whose pyinit to run")
    parser.add_argument("--clients", type=int, nargs="+", default=[32, 100])
    parser.add_argument("--sources", nargs="+", default=["127.0.0.1", "127.0.0.2"])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(f"pyinit from {args.tree}; /live every {INTERVAL}s with a {TIMEOUT}s timeout for {args.seconds:g}s")
    for source in args.sources:
        for clients in args.clients:
            result = measure(args.tree, clients, source, args.seconds)
            print(
                f"{result.clients:4d} tricklers from {result.source}: {result.answered}/{result.sent} probes answered"
            )


if __name__ == "__main__":
    main()
