"""One init as PID 1 of a fresh PID namespace, running one helper as its child.

The helper answers one-byte commands on its stdin with 8-byte records on its
stdout (helpers/*.c), so a session is a pipe pair plus the init's host pid.
"""

from __future__ import annotations

import os
import select
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from bench.core import procfs

NAMESPACE = ["unshare", "--pid", "--fork", "--mount-proc"]
RECORD = struct.Struct("=q")


class BenchError(Exception):
    """Something crashed: a helper, an init, or a reply that never came."""


#: Every session still running, so a crash or ^C cleans up what this run started.
LIVE: set[Session] = set()


def read_exact(fd: int, size: int, timeout: float) -> bytes | None:
    """``size`` bytes from ``fd``, or None if they do not all come in ``timeout`` s."""
    data = b""
    deadline = time.monotonic() + timeout
    while len(data) < size:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise BenchError("the child's stdout closed (did the child or the init die?)")
        data += chunk
    return data


def drain(fd: int) -> int:
    """Throw away whatever is waiting on ``fd`` (late replies); return how many bytes."""
    dropped = 0
    while select.select([fd], [], [], 0)[0]:
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        dropped += len(chunk)
    return dropped


def _pipe(stream: IO[bytes] | None) -> IO[bytes]:
    if stream is None:
        raise BenchError("subprocess.Popen gave no pipe where one was asked for")
    return stream


class Session:
    def __init__(self, name: str, init: Sequence[str], child: Sequence[str], logdir: Path, tag: str) -> None:
        self.name = name
        self.log_path = logdir / f"{name}.{tag}.stderr"
        self._log = open(self.log_path, "wb")  # closed in close()
        self.proc = subprocess.Popen(
            [*NAMESPACE, *init, "--", *child],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        LIVE.add(self)
        self.stdin, self.stdout = _pipe(self.proc.stdin), _pipe(self.proc.stdout)
        self.out = self.stdout.fileno()
        self.inp = self.stdin.fileno()
        self.pid = 0
        first = self.read_record(timeout=20)
        if first is None:
            raise BenchError(f"{name}: the child never said it was ready{self.log_tail()}")
        self.first_record = first
        self.pid = self._find_init()
        self.tids = os.listdir(f"/proc/{self.pid}/task")
        kids = self.children()
        if len(kids) != 1:
            raise BenchError(f"{name}: expected one child of the init, found {kids}")
        self.child_pid = kids[0]

    def _unshare_children(self) -> list[int]:
        upid = self.proc.pid
        with open(f"/proc/{upid}/task/{upid}/children") as f:
            return [int(p) for p in f.read().split()]

    def _find_init(self) -> int:
        """The init's host pid: the one child of the unshare process, PID 1 inside."""
        kids = self._unshare_children()
        if len(kids) != 1:
            raise BenchError(f"{self.name}: unshare has children {kids}, expected one")
        nspid = procfs.status(kids[0]).get("NSpid", "").split()
        if not nspid or nspid[-1] != "1":
            raise BenchError(f"{self.name}: pid {kids[0]} is not PID 1 in its namespace (NSpid {nspid})")
        return kids[0]

    def log_tail(self) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip()
        except OSError:
            return ""
        return f"\n  {self.name} stderr: {text[-800:]}" if text else ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def read_record(self, timeout: float) -> int | None:
        try:
            data = read_exact(self.out, RECORD.size, timeout)
        except BenchError as exc:
            self.proc.poll()
            raise BenchError(f"{self.name}: {exc}, exit status {self.proc.returncode}{self.log_tail()}") from None
        return None if data is None else int(RECORD.unpack(data)[0])

    def command(self, byte: bytes, timeout: float) -> int:
        os.write(self.inp, byte)
        value = self.read_record(timeout)
        if value is None:
            raise BenchError(f"{self.name}: no answer to {byte!r} within {timeout} s{self.log_tail()}")
        return value

    def children(self) -> list[int]:
        return procfs.children(self.pid, self.tids)

    def children_text(self) -> str:
        """The raw children lists (cheap enough for a tight loop)."""
        return procfs.children_text(self.pid, self.tids)

    def voluntary_switches(self) -> int:
        total = 0
        for tid in os.listdir(f"/proc/{self.pid}/task"):
            try:
                total += int(procfs.status(self.pid, tid)["voluntary_ctxt_switches"])
            except FileNotFoundError:
                pass
        return total

    def rss_bytes(self) -> int:
        value = procfs.status(self.pid)["VmRSS"]  # "12345 kB"
        return int(value.split()[0]) * 1024

    def signal(self, number: int) -> None:
        """Signal the init, only while it is still our unshare's child (no pid reuse)."""
        if self._init_is_ours():
            os.kill(self.pid, number)

    def _init_is_ours(self) -> bool:
        if not self.pid or not self.alive():
            return False
        try:
            return self.pid in self._unshare_children()
        except OSError:
            return False

    def close(self, polite: Callable[[Session], None] | None = None, timeout: float = 10.0) -> int | None:
        """Stop politely if asked, else (or if that fails) SIGKILL PID 1, which ends the namespace."""
        try:
            if polite is not None and self.alive():
                try:
                    polite(self)
                    self.proc.wait(timeout)
                except (subprocess.TimeoutExpired, OSError):
                    pass
            if self.alive():
                self.signal(signal.SIGKILL)
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()  # our own child, by its pid
                    self.proc.wait(5)
            return self.proc.returncode
        finally:
            for stream in (self.stdin, self.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
            self._log.close()
            LIVE.discard(self)


def terminate(session: Session) -> None:
    session.signal(signal.SIGTERM)


def close_stdin(session: Session) -> None:
    session.stdin.close()


def close_all() -> None:
    """SIGKILL every session still running; for the way out, so it never raises."""
    for session in list(LIVE):
        try:
            session.close()
        except Exception as exc:  # best effort on the way out
            print(f"cleanup of {session.name} failed: {exc}", file=sys.stderr)
