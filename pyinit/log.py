"""pyinit's own log: one line per event on stderr, as text or as JSON.

Not the stdlib ``logging`` package: it costs start-up time, takes locks that a
forked child could inherit held, and pyinit only ever needs one sink. Every
line names an event, so the JSON form is a stream operators can query, and
every line after T0 carries its offset from T0: that is the shutdown timeline.

Lines go to file descriptor 2 in one ``write`` each, not through
``sys.stderr``: that object is None when pyinit was started with stderr
closed, and a line must never cost the drain it describes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Callable, Union

#: The levels pyinit emits. tini's TINI_VERBOSITY=3 and -vvv ask for more
#: than DEBUG; pyinit has nothing finer to say, so they mean DEBUG.
ERROR, INFO, DEBUG = 0, 1, 2
LEVEL_NAMES = {ERROR: "error", INFO: "info", DEBUG: "debug"}
#: A warning is shown when info is (-q hides it), under a name of its own.
WARNING = "warning"

#: What a JSON field may hold: each keeps its own type in the record (pids are numbers).
Field = Union[str, int, float, None, Sequence[int], Sequence[str]]


def write_line(text: str) -> None:
    """Write ``text`` and a newline to stderr; a closed, full or broken stderr loses the line, nothing else."""
    data = (text + "\n").encode("utf-8", "backslashreplace")
    try:
        while data:
            data = data[os.write(2, data) :]
    except OSError:
        pass


class Log:
    def __init__(self, verbosity: int = INFO, fmt: str = "text") -> None:
        self.verbosity = verbosity
        self.t0: float | None = None
        self._render: Callable[[str, str, str, dict[str, Field]], str] = self._text
        if fmt == "json":
            import json  # now, not on the first line after T0, which would carry the import in its offset

            self._dumps: Callable[[dict[str, Field]], str] = json.dumps
            self._render = self._json

    def offset(self) -> float | None:
        return None if self.t0 is None else time.monotonic() - self.t0

    def wants(self, level: int) -> bool:
        """Whether a line at ``level`` is shown: check before building a costly message."""
        return level <= self.verbosity

    def emit(self, level: int, event: str, message: str, **fields: Field) -> None:
        if level <= self.verbosity:
            write_line(self._render(LEVEL_NAMES[level], event, message, fields))

    def error(self, event: str, message: str, **fields: Field) -> None:
        self.emit(ERROR, event, message, **fields)

    def info(self, event: str, message: str, **fields: Field) -> None:
        self.emit(INFO, event, message, **fields)

    def warning(self, event: str, message: str, **fields: Field) -> None:
        if self.wants(INFO):
            write_line(self._render(WARNING, event, message, fields))

    def debug(self, event: str, message: str, **fields: Field) -> None:
        self.emit(DEBUG, event, message, **fields)

    def _text(self, level: str, event: str, message: str, fields: dict[str, Field]) -> str:
        offset = self.offset()
        stamp = "" if offset is None else f"+{offset:.3f}s "
        prefix = "" if level in ("info", "debug") else f"{level}: "
        return f"[pyinit] {stamp}{prefix}{message}"

    def _json(self, level: str, event: str, message: str, fields: dict[str, Field]) -> str:
        now = time.time()
        record: dict[str, Field] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z",
            "level": level,
            "event": event,
            "message": message,
        }
        offset = self.offset()
        if offset is not None:
            record["offset"] = round(offset, 3)
        record.update(fields)
        return self._dumps(record)
