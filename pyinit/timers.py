"""The one clock: named deadlines, of which the loop only ever needs the nearest.

A handful of deadlines exist at any time (the pre-stop delay, the kill
deadline, one per running hook), so a dict scanned with min() is simpler than
a heap and just as fast. Naming them makes cancelling and re-arming explicit.

The clock never raises: a delay is clamped to ``[0, LONGEST]``, so that the
wait handed to sigtimedwait is always a number the kernel takes (it overflows
at about 292 years, and ``inf`` or ``nan`` are no time at all).
"""

from __future__ import annotations

import time
from typing import Callable

#: The longest delay the clock takes, and the longest duration the command line accepts: a year.
LONGEST = 365 * 24 * 3600.0


class Timers:
    def __init__(self) -> None:
        self._due: dict[str, tuple[float, Callable[[], None]]] = {}

    def set(self, name: str, delay: float, action: Callable[[], None], *, since: float | None = None) -> None:
        """Arm ``name`` to fire ``delay`` seconds after ``since`` (a monotonic time; default now)."""
        delay = min(delay, LONGEST) if delay >= 0 else 0.0  # nan compares false: no delay
        self._due[name] = ((time.monotonic() if since is None else since) + delay, action)

    def cancel(self, name: str) -> None:
        self._due.pop(name, None)

    def timeout(self) -> float | None:
        """Seconds until the nearest deadline, or None to wait forever."""
        if not self._due:
            return None
        return max(0.0, min(when for when, _ in self._due.values()) - time.monotonic())

    def fire_due(self) -> None:
        now = time.monotonic()
        for name in [n for n, (when, _) in self._due.items() if when <= now]:
            entry = self._due.pop(name, None)
            if entry is not None:
                entry[1]()
