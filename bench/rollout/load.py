"""The load: ``hey`` at a fixed rate, for as long as a rollout lasts.

hey's ``-q`` is a rate per worker (a ticker), so ``-c W -q R/W`` sends R
requests per second in total as long as a request takes less than W/R seconds
(one worker per 20 req/s: 50 ms, over twice what a request takes here). The
workers' tickers start together, so requests arrive in small bursts, one per
worker every 50 ms.
It runs with a long ``-z`` and is stopped with SIGINT when the rollout is over;
it then prints its summary, from which the client's own counts are taken:
responses by status and errors (connection refused or reset, timeouts) that
never got an HTTP status. Its CSV output lists only the requests that got a
status, so the per-request timeline comes from nginx's access log instead.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


def binary() -> str | None:
    return shutil.which("hey")


@dataclass
class Counts:
    """What the client saw."""

    statuses: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def requests(self) -> int:
        return sum(self.statuses.values()) + sum(self.errors.values())

    @property
    def connection_errors(self) -> int:
        return sum(self.errors.values())

    @property
    def failed(self) -> int:
        return sum(n for code, n in self.statuses.items() if not 200 <= code < 400) + self.connection_errors


def parse_summary(text: str) -> Counts:
    counts = Counts()
    section = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("Total:"):
            match = re.search(r"([\d.]+)\s*secs", stripped)
            counts.seconds = float(match.group(1)) if match else 0.0
        if stripped == "Status code distribution:":
            section = "status"
            continue
        if stripped == "Error distribution:":
            section = "error"
            continue
        match = re.match(r"\[(\d+)\]\s+(.*)", stripped)
        if section and match:
            number, rest = int(match.group(1)), match.group(2)
            if section == "status":
                count = re.match(r"(\d+)\s+responses", rest)
                if count:
                    counts.statuses[number] = counts.statuses.get(number, 0) + int(count.group(1))
            else:
                counts.errors[rest] = counts.errors.get(rest, 0) + number
        elif stripped and not match and section and stripped.endswith(":"):
            section = None
    return counts


class Hey:
    """One hey run, in the background, tagged with ``X-Run: run``."""

    def __init__(self, url: str, rate: float, *, keepalive: bool, run: str, out: Path, workers: int = 0) -> None:
        exe = binary()
        if exe is None:
            raise RuntimeError("hey not found (Debian: apt-get install hey)")
        self.workers = workers or max(1, min(100, round(rate / 20)))
        per_worker = rate / self.workers
        self.out = out
        argv = [exe, "-z", "600s", "-c", str(self.workers), "-q", f"{per_worker:g}", "-t", "15", "-H", f"X-Run: {run}"]
        if not keepalive:
            argv.append("-disable-keepalive")
        argv.append(url)
        self.argv = argv
        self.started = time.time()
        self._stdout = open(out, "wb")  # closed in finish()
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self._stdout, stderr=subprocess.STDOUT, start_new_session=True
        )

    def finish(self, timeout: float = 30.0) -> Counts:
        """SIGINT: hey stops sending, waits for the requests in flight and prints its summary."""
        try:
            if self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGINT)
            self.proc.wait(timeout=timeout)
        finally:
            self.kill()
            self._stdout.close()
        return parse_summary(self.out.read_text(errors="replace"))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
