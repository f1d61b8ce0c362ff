"""The replica: a small HTTP/1.1 app on 127.0.0.1 that shuts down the way a good app does.

It is started as a script (``python app.py --port N``), under the init being
measured, and answers every request with 200 after ``--work-ms`` of "work".

On its drain signal it does what every shutdown guide asks for, and exactly
what produces the race a load balancer loses:

1. it closes its listening socket at once: new connections are refused;
2. it closes its idle keep-alive connections;
3. it finishes every request already in flight (answering ``Connection: close``);
4. it exits 0 when no connection is left (or after ``--drain-timeout``).

``--drain-on TERM`` (the default) is the well-behaved app. ``--drain-on USR1``
is the TERM-intolerant one: it drains only on USR1 and leaves SIGTERM at its
default action, so TERM kills it at once, mid-request (nginx, php-fpm and
Unicorn-style servers behave like this).

Only the standard library is used, so any interpreter can run it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys


class App:
    def __init__(self, name: str, work: float, drain_timeout: float) -> None:
        self.name = name
        self.work = work
        self.drain_timeout = drain_timeout
        self.server: asyncio.AbstractServer | None = None
        self.draining = False
        #: writer -> whether a request is being answered on it right now
        self.busy: dict[asyncio.StreamWriter, bool] = {}
        self.started = asyncio.Event()
        self.done = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.busy[writer] = False
        try:
            while not self.draining:
                head = await reader.readuntil(b"\r\n\r\n")
                self.busy[writer] = True
                lines = head.decode("latin-1").split("\r\n")
                version = lines[0].rsplit(" ", 1)[-1]
                headers = {k.strip().lower(): v.strip().lower() for k, _, v in (h.partition(":") for h in lines[1:])}
                length = int(headers.get("content-length") or 0)
                if length:
                    await reader.readexactly(length)
                keep = version == "HTTP/1.1" and headers.get("connection") != "close"
                await asyncio.sleep(self.work)
                keep = keep and not self.draining
                body = f"{self.name}\n".encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                    + f"Content-Length: {len(body)}\r\nConnection: {'keep-alive' if keep else 'close'}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
                self.busy[writer] = False
                if not keep:
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass
        finally:
            self.busy.pop(writer, None)
            writer.close()
            if self.draining and not self.busy:
                self.done.set()

    def drain(self) -> None:
        if self.draining:
            return
        self.draining = True
        self.started.set()
        assert self.server is not None
        self.server.close()  # 1. the listener: new connections are refused from now on
        for writer, busy in list(self.busy.items()):
            if not busy:
                writer.close()  # 2. idle keep-alive connections
        if not self.busy:
            self.done.set()  # 3. in-flight requests end their own connection when answered

    async def main(self, port: int, drain_on: int) -> int:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", port, backlog=128)
        asyncio.get_running_loop().add_signal_handler(drain_on, self.drain)
        await self.started.wait()
        try:  # done is set when the last connection is gone
            await asyncio.wait_for(self.done.wait(), self.drain_timeout)
        except asyncio.TimeoutError:
            return 1
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", default=f"pid{os.getpid()}")
    parser.add_argument("--work-ms", type=float, default=20.0)
    parser.add_argument("--drain-on", choices=["TERM", "USR1"], default="TERM")
    parser.add_argument("--drain-timeout", type=float, default=10.0)
    args = parser.parse_args()
    app = App(args.name, args.work_ms / 1000.0, args.drain_timeout)
    return asyncio.run(app.main(args.port, getattr(signal, "SIG" + args.drain_on)))


if __name__ == "__main__":
    sys.exit(main())
