"""Command lines read statically: ``sh -c`` scripts, ``sleep`` lengths and which program really runs.

A shell between the platform and the app decides whether SIGTERM reaches the
app: a shell that execs its last command is replaced by it; one that does not
stays as the app's parent, and as PID 1 it ignores SIGTERM (the kernel applies
no default action to PID 1), unless it traps it.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh", "ksh", "mksh"})
_SEPARATORS = frozenset({";", "&&", "||", "|", "&", "\n", "(", ")", ";;", "|&"})
#: Commands that exec what follows them, so the process stays the same one.
_EXEC_THROUGH = {"env": 0, "gosu": 1, "su-exec": 1, "setuidgid": 1, "chpst": 0, "nice": 0}
_SLEEP_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


@dataclass(frozen=True)
class Script:
    """What a ``sh -c`` script does with the process it runs in."""

    text: str
    #: The argv of the script's last command, with "$@" filled in; () when there is none.
    last: tuple[str, ...]
    #: The last command is ``exec``'d: the shell is replaced by it.
    execs: bool
    #: A single plain command: bash execs it by itself, dash (Debian's /bin/sh) does not.
    lone: bool
    #: ``trap ... TERM``: the shell handles the stop signal itself.
    traps_term: bool
    #: How long that trap sleeps before it stops the app (the seeds' trap-based delay), if it does.
    trap_sleep: float | None = None


def script_of(argv: Sequence[str]) -> tuple[str, tuple[str, ...]] | None:
    """``sh -c SCRIPT [$0 $1...]`` -> (SCRIPT, ($1...)); None when argv is not a shell running a script."""
    if len(argv) < 3 or os.path.basename(argv[0]) not in SHELLS:
        return None
    flags = argv[1]
    if not (flags.startswith("-") and "c" in flags[1:] and "-" not in flags[1:]):
        return None
    return argv[2], tuple(argv[4:])


def _commands(text: str) -> list[list[str]]:
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|()<>\n")
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    try:
        for token in lexer:
            if token in _SEPARATORS:
                commands.append([token])  # the separator leads the next command, so "&" is seen
            else:
                commands[-1].append(token)
    except ValueError:  # an unclosed quote: the shell would fail too
        return []
    return [command for command in commands if [t for t in command if t not in _SEPARATORS]]


def read_script(text: str, positional: Sequence[str] = ()) -> Script:
    commands = _commands(text)
    traps = [
        words[1]
        for words in ([word for word in command if word not in _SEPARATORS] for command in commands)
        if words[:1] == ["trap"]
        and len(words) > 2
        and any(word.upper().removeprefix("SIG") in ("TERM", "15") for word in words[2:])
    ]
    traps_term = bool(traps)
    trap_sleep = sleep_seconds(("sh", "-c", traps[-1])) if traps else None
    if not commands:
        return Script(text, (), False, False, traps_term, trap_sleep)
    last = commands[-1]
    separator = last[0] if last[0] in _SEPARATORS else ""
    words = [word for word in last if word not in _SEPARATORS]
    filled: list[str] = []
    for word in words:
        filled.extend(positional if word in ("$@", "${@}", "$*") else [word])
    execs = bool(filled) and filled[0] == "exec" and separator != "&"
    if execs:
        filled = filled[1:]
        while filled[:1] in (["-a"], ["-c"], ["-l"]):
            filled = filled[2:] if filled[0] == "-a" else filled[1:]
    lone = len(commands) == 1 and not execs
    return Script(text, tuple(filled), execs, lone, traps_term, trap_sleep)


def program(argv: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """The program that really runs and its arguments, past ``env``, ``gosu user``, ``bundle exec``, ``python -m``."""
    words = list(argv)
    while words:
        name = os.path.basename(words[0])
        if name in _EXEC_THROUGH:
            words = words[1:]
            while words and (words[0].startswith("-") or "=" in words[0]):
                words = words[1:]
            words = words[_EXEC_THROUGH[name] :]
        elif name in ("bundle", "bundler") and words[1:2] == ["exec"]:
            words = words[2:]
        elif re.fullmatch(r"python[0-9.]*", name) and words[1:2] == ["-m"] and len(words) > 2:
            words = words[2:]
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
            words = words[1:]
        else:
            return name, tuple(words[1:])
    return "", ()


def sleep_seconds(argv: Sequence[str]) -> float | None:
    """How long a preStop command sleeps: ``sleep 15``, or the sleeps in ``sh -c "...; sleep 15"``.

    None when it is not a sleep (an HTTP call, a script): its length is unknown.
    """
    script = script_of(argv)
    commands = _commands(script[0]) if script else [list(argv)]
    total, found = 0.0, False
    for command in commands:
        words = [word for word in command if word not in _SEPARATORS]
        if words and os.path.basename(words[0]) == "sleep":
            for word in words[1:]:
                match = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)([smhd]?)", word)
                if match is None:
                    return None  # sleep $DELAY: not known here
                total += float(match.group(1)) * _SLEEP_UNITS[match.group(2)]
                found = True
    return total if found else None


def option_seconds(args: Sequence[str], *names: str) -> float | None:
    """The number given to one of ``names`` (``--keep-alive 5`` or ``--keep-alive=5``), if any."""
    for index, word in enumerate(args):
        name, equals, value = word.partition("=")
        if name in names:
            value = value if equals else (args[index + 1] if index + 1 < len(args) else "")
            try:
                return float(value)
            except ValueError:
                return None
    return None
