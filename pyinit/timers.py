"""The one clock: named deadlines, of which the loop only ever needs the nearest.

A handful of deadlines exist at any time (the pre-stop delay, the kill
deadline, one per running hook), so a dict scanned with min() is simpler than
a heap and just as fast. Naming them makes cancelling and re-arming explicit.
"""

from __future__ import annotations

import time
from typing import Callable


class Timers:
    def __init__(self) -> None:
        self._due: dict[str, tuple[float, Callable[[], None]]] = {}

    def set(self, name: str, delay: float, action: Callable[[], None]) -> None:
        self._due[name] = (time.monotonic() + delay, action)

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
