"""pyinit's own log: one line per event on stderr, as text or as JSON.

Not the stdlib ``logging`` package: it costs start-up time, takes locks that a
forked child could inherit held, and pyinit only ever needs one sink. Every
line names an event, so the JSON form is a stream operators can query, and
every line after T0 carries its offset from T0: that is the shutdown timeline.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable

#: The levels pyinit emits. tini's TINI_VERBOSITY=3 and -vvv ask for more
#: than DEBUG; pyinit has nothing finer to say, so they mean DEBUG.
ERROR, INFO, DEBUG = 0, 1, 2
LEVEL_NAMES = {ERROR: "error", INFO: "info", DEBUG: "debug"}
#: A warning is shown when info is (-q hides it), under a name of its own.
WARNING = "warning"


class Log:
    def __init__(self, verbosity: int = INFO, fmt: str = "text") -> None:
        self.verbosity = verbosity
        self.t0: float | None = None
        self._render: Callable[[str, str, str, dict[str, Any]], str] = self._json if fmt == "json" else self._text

    def offset(self) -> float | None:
        return None if self.t0 is None else time.monotonic() - self.t0

    def wants(self, level: int) -> bool:
        """Whether a line at ``level`` is shown: check before building a costly message."""
        return level <= self.verbosity

    def emit(self, level: int, event: str, message: str, **fields: Any) -> None:
        if level > self.verbosity:
            return
        self._write(self._render(LEVEL_NAMES[level], event, message, fields))

    def _write(self, line: str) -> None:
        try:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            # A closed or broken stderr must never take the init down with it.
            pass

    def error(self, event: str, message: str, **fields: Any) -> None:
        self.emit(ERROR, event, message, **fields)

    def info(self, event: str, message: str, **fields: Any) -> None:
        self.emit(INFO, event, message, **fields)

    def warning(self, event: str, message: str, **fields: Any) -> None:
        if self.wants(INFO):
            self._write(self._render(WARNING, event, message, fields))

    def debug(self, event: str, message: str, **fields: Any) -> None:
        self.emit(DEBUG, event, message, **fields)

    def _text(self, level: str, event: str, message: str, fields: dict[str, Any]) -> str:
        offset = self.offset()
        stamp = "" if offset is None else f"+{offset:.3f}s "
        prefix = "" if level in ("info", "debug") else f"{level}: "
        return f"[pyinit] {stamp}{prefix}{message}"

    def _json(self, level: str, event: str, message: str, fields: dict[str, Any]) -> str:
        import json

        now = time.time()
        record: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z",
            "level": level,
            "event": event,
            "message": message,
        }
        offset = self.offset()
        if offset is not None:
            record["offset"] = round(offset, 3)
        record.update(fields)
        return json.dumps(record, default=str)
