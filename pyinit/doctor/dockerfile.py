"""A Dockerfile, read for what decides its container's shutdown: ENTRYPOINT, CMD, ENV, STOPSIGNAL.

Only the final stage is the image. A stage built ``FROM`` an earlier one
inherits what that one set; one built from another image inherits what that
image set, which the doctor cannot see (``base_known`` is False then).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, replace

from pyinit.doctor.load import Dockerfile, InputError, Where
from pyinit.signals import parse_signal

INSTRUCTIONS = frozenset(
    "FROM RUN CMD LABEL MAINTAINER EXPOSE ENV ADD COPY ENTRYPOINT VOLUME USER WORKDIR ARG ONBUILD STOPSIGNAL "
    "HEALTHCHECK SHELL".split()
)
_HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::([-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


@dataclass(frozen=True)
class Form:
    """An ENTRYPOINT or CMD: ``argv`` is what Docker runs (the shell form is SHELL plus the text)."""

    keyword: str
    argv: tuple[str, ...]
    shell_form: bool
    where: Where


@dataclass(frozen=True)
class Image:
    path: str
    where: Where
    base: str
    base_known: bool
    entrypoint: Form | None = None
    cmd: Form | None = None
    env: dict[str, str] = field(default_factory=dict)
    env_where: dict[str, Where] = field(default_factory=dict)
    stop_signal: int | None = None
    stop_signal_where: Where | None = None
    exposed: tuple[int, ...] = ()
    shell: tuple[str, ...] = ("/bin/sh", "-c")
    cmd_inherited: bool = False

    @property
    def name(self) -> str:
        """What image names built from it are likely to end in: ``web`` for Dockerfile.web or web/Dockerfile."""
        base = os.path.basename(self.path)
        for prefix in ("Dockerfile.", "Containerfile."):
            if base.startswith(prefix):
                return base[len(prefix) :]
        if "." in base and base.rsplit(".", 1)[1].lower() in ("dockerfile", "containerfile"):
            return base.rsplit(".", 1)[0]
        return os.path.basename(os.path.dirname(os.path.abspath(self.path)))

    @property
    def front(self) -> Form | None:
        """The instruction whose command starts PID 1: ENTRYPOINT, unless it is empty or missing, then CMD."""
        return self.entrypoint if self.entrypoint and self.entrypoint.argv else self.cmd

    def argv(self) -> tuple[str, ...]:
        """What ``docker run IMAGE`` runs. A shell-form ENTRYPOINT gets CMD only as the shell's $0, $1..."""
        return (self.entrypoint.argv if self.entrypoint else ()) + (self.cmd.argv if self.cmd else ())


def _logical_lines(dockerfile: Dockerfile) -> list[tuple[int, str]]:
    """(first line, text) of each instruction: continuations joined, comments and heredoc bodies dropped."""
    lines = dockerfile.text.splitlines()
    escape = "\\"
    for raw in lines:  # parser directives come first, before any instruction or ordinary comment
        match = re.fullmatch(r"#\s*([A-Za-z]+)\s*=\s*(\S+)\s*", raw)
        if not match:
            break
        if match.group(1).lower() == "escape":
            escape = match.group(2)
    out: list[tuple[int, str]] = []
    index = 0
    while index < len(lines):
        start, text = index + 1, lines[index].strip()
        index += 1
        if not text or text.startswith("#"):
            continue
        while text.endswith(escape) and index < len(lines):
            text = text[: -len(escape)]
            following = lines[index].strip()
            index += 1
            if following.startswith("#"):
                following = escape  # a comment inside a continuation is dropped, the continuation goes on
            text += " " + following if following else escape
        heredoc = _HEREDOC.search(text)
        if heredoc and text.split(None, 1)[0].upper() in ("RUN", "COPY", "ADD"):
            end = heredoc.group(3)
            while index < len(lines) and (lines[index].strip() if heredoc.group(1) else lines[index]) != end:
                index += 1
            index += 1
        out.append((start, text.rstrip(escape).strip()))
    return out


def _substitute(match: re.Match[str], variables: dict[str, str]) -> str:
    """``$NAME``, ``${NAME}``, ``${NAME:-word}``, ``${NAME:+word}``; an unknown name is empty, as in the builder."""
    known = variables.get(match.group(1) or match.group(4), "")
    if match.group(2) == "-":
        return known or match.group(3)
    if match.group(2) == "+":
        return match.group(3) if known else ""
    return known


def _words(text: str, variables: dict[str, str]) -> list[str]:
    """Split like the builder does for ENV: quotes group, backslash escapes, $VAR expands (not in '...')."""
    words: list[str] = []
    current: list[str] = []
    started = False
    index = 0
    quote = ""
    while index < len(text):
        char = text[index]
        if quote != "'" and char == "\\" and index + 1 < len(text):
            following = text[index + 1]
            if quote == '"' and following not in '"\\$':
                current.append(char)
            current.append(following)
            index += 2
            started = True
            continue
        if quote and char == quote:
            quote = ""
        elif not quote and char in "'\"":
            quote = char
            started = True
        elif not quote and char.isspace():
            if started:
                words.append("".join(current))
                current, started = [], False
        elif quote != "'" and char == "$":
            match = _VARIABLE.match(text, index)
            if match:
                current.append(_substitute(match, variables))
                index = match.end()
                started = True
                continue
            current.append(char)
            started = True
        else:
            current.append(char)
            started = True
        index += 1
    if started:
        words.append("".join(current))
    return words


def _form(keyword: str, text: str, where: Where, shell: tuple[str, ...]) -> Form:
    if text.startswith("["):
        try:
            argv = json.loads(text)
        except ValueError:
            argv = None
        if isinstance(argv, list) and all(isinstance(item, str) for item in argv):
            return Form(keyword, tuple(argv), False, where)
    return Form(keyword, (*shell, text), True, where)


def read(dockerfile: Dockerfile) -> Image:
    stages: dict[str, Image] = {}
    image: Image | None = None
    stage: str | None = None
    args: dict[str, str] = {}
    for line, text in _logical_lines(dockerfile):
        keyword, _, rest = text.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        where = Where(dockerfile.path, line)
        if keyword not in INSTRUCTIONS:
            raise InputError(dockerfile.path, line, f"unknown instruction {keyword!r}")
        if keyword == "ARG":
            for word in _words(rest, args):
                name, _, default = word.partition("=")
                args.setdefault(name, default)
            continue
        if keyword == "FROM":
            words = [word for word in _words(rest, args) if not word.startswith("--")]
            if not words:
                raise InputError(dockerfile.path, line, "FROM without an image")
            base = words[0]
            parent = stages.get(base.lower())
            if parent is not None:
                image = replace(parent, where=where, base=base, cmd_inherited=parent.cmd is not None)
            else:
                image = Image(dockerfile.path, where, base, base_known=base == "scratch")
            stage = words[2].lower() if len(words) >= 3 and words[1].upper() == "AS" else None
            if stage:
                stages[stage] = image
            continue
        if image is None:
            raise InputError(dockerfile.path, line, f"{keyword} before the first FROM")
        image = _apply(image, keyword, rest, where, args)
        if stage:
            stages[stage] = image
    if image is None:
        raise InputError(dockerfile.path, None, "no FROM: not a Dockerfile")
    return image


def _apply(image: Image, keyword: str, rest: str, where: Where, args: dict[str, str]) -> Image:
    if keyword == "ENV":
        env, env_where = dict(image.env), dict(image.env_where)
        words = _words(rest, {**args, **env})
        if words and "=" not in words[0]:  # the old form: ENV NAME the rest of the line
            name, _, value = rest.partition(" ")
            pairs = [(name, " ".join(_words(value, {**args, **env})))]
        else:
            pairs = [(word.partition("=")[0], word.partition("=")[2]) for word in words]
        for name, value in pairs:
            env[name] = value
            env_where[name] = where
        return replace(image, env=env, env_where=env_where)
    if keyword == "ENTRYPOINT":
        cmd = None if image.cmd_inherited else image.cmd  # a new ENTRYPOINT resets the CMD it inherited
        return replace(image, entrypoint=_form(keyword, rest, where, image.shell), cmd=cmd, cmd_inherited=False)
    if keyword == "CMD":
        return replace(image, cmd=_form(keyword, rest, where, image.shell), cmd_inherited=False)
    if keyword == "STOPSIGNAL":
        try:
            number = parse_signal(rest)
        except ValueError as exc:
            raise InputError(where.path, where.line, f"STOPSIGNAL: {exc}") from None
        return replace(image, stop_signal=number, stop_signal_where=where)
    if keyword == "SHELL":
        shell = _form(keyword, rest, where, ())
        if shell.shell_form:
            raise InputError(where.path, where.line, 'SHELL needs the JSON form, e.g. SHELL ["/bin/bash", "-c"]')
        return replace(image, shell=shell.argv)
    if keyword == "EXPOSE":
        ports = [int(word.split("/")[0]) for word in _words(rest, args) if word.split("/")[0].isdigit()]
        return replace(image, exposed=image.exposed + tuple(ports))
    return image
