"""What a container runs as PID 1, and the pyinit configuration that amounts to.

pyinit's own parser (``pyinit.cli``) reads the init's arguments with the
container's environment, off this host, so the result is what pyinit would run
with in that container: the same defaults, the same PYINIT_* variables, the
same refusals, the same kill deadline planned by ``pyinit.budget``. dumb-init's
and tini's command lines go through the same parser (pyinit accepts their flags
with their meaning), with only their own variables.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Optional

import click
from click.core import ParameterSource

from pyinit import cli
from pyinit.config import Config
from pyinit.doctor.load import Where
from pyinit.doctor.shell import Script, option_seconds, program, read_script, script_of

#: Each init and the prefix of the variables it reads.
INITS = {"pyinit": "", "dumb-init": "DUMB_INIT_", "tini": "TINI_"}
#: The options dumb-init and tini really have; pyinit's parser accepts more, which they would refuse.
OWN_OPTIONS = {
    "dumb-init": frozenset({"command", "single_child", "rewrite", "verbose"}),
    "tini": frozenset({"command", "subreaper", "pdeathsig", "verbose", "warn_on_reap", "process_group", "remap_exit"}),
}
#: How servers take their idle keep-alive timeout on the command line.
KEEP_ALIVE_FLAGS = {
    "gunicorn": ("--keep-alive",),
    "uvicorn": ("--timeout-keep-alive",),
    "hypercorn": ("--keep-alive",),
}


@dataclass(frozen=True)
class Origin:
    """Where a container's command line and environment are written, to point findings at them."""

    where: Where
    field: str
    env_where: Mapping[str, Where] = dataclasses.field(default_factory=dict)
    env_field: Mapping[str, str] = dataclasses.field(default_factory=dict)


def init_of(name: str) -> str | None:
    if name == "docker-init" or name.startswith("tini"):
        return "tini"
    return name if name in INITS else None


@dataclass(frozen=True)
class Process:
    #: PID 1's argv; None when it is the image's and the image is not known.
    argv: tuple[str, ...] | None
    origin: Origin
    #: PID 1 is a shell that stays, running this script.
    shell: Script | None = None
    init: str | None = None
    #: What the init says when it refuses to start with this command line and environment.
    refused: str | None = None
    config: Config | None = None
    sources: Mapping[str, ParameterSource | None] = dataclasses.field(default_factory=dict)
    hooks_dir: str | None = None
    #: The init signals the app's whole process group, not only its direct child.
    group: bool = False
    #: The init's child is a shell that stays, running this script.
    app_shell: Script | None = None
    app: tuple[str, ...] = ()
    server: str = ""
    keep_alive: float | None = None

    @property
    def pyinit(self) -> Config | None:
        """pyinit's configuration, when pyinit is the init and starts."""
        return self.config if self.init == "pyinit" else None

    @property
    def delay(self) -> float:
        """How long the app keeps serving after the stop signal: pyinit's delay, or a shell trap's sleep."""
        if self.pyinit:
            return self.pyinit.pre_stop_delay
        trap = self.shell or self.app_shell
        return (trap.trap_sleep or 0.0) if trap and trap.traps_term else 0.0

    def where_of(self, option: str) -> tuple[Where, str]:
        """Where an option's value is set: its PYINIT_* variable, or else the command line."""
        name = f"PYINIT_{option.upper()}"
        if self.sources.get(option) is ParameterSource.ENVIRONMENT and name in self.origin.env_where:
            return self.origin.env_where[name], self.origin.env_field.get(name, name)
        return self.origin.where, self.origin.field

    def delivered(self, stop_signal: int) -> int | None:
        """The signal the app gets when the platform sends ``stop_signal``: 0 if dropped, None if a command runs."""
        config = self.config if self.init else None
        if config is None:
            return stop_signal
        if self.init == "pyinit" and stop_signal == config.stop_signal and config.stop_command:
            return None
        return config.rewrite.get(stop_signal, stop_signal)


Parsed = tuple[Optional[click.Context], Optional[Config], Optional[str]]


def _unwrap(argv: tuple[str, ...]) -> tuple[tuple[str, ...], Script | None]:
    """Follow ``sh -c 'exec ...'`` to what replaces the shell; stop at a shell that stays."""
    while True:
        found = script_of(argv)
        if found is None:
            return argv, None
        script = read_script(*found)
        if not script.execs:
            return script.last, script
        argv = script.last


def _parse(init: str, args: Sequence[str], env: Mapping[str, str]) -> Parsed:
    """The parsed context, pyinit's Config, or else why the init refuses to start."""
    prefix = INITS[init]
    environ = {name: value for name, value in env.items() if name.startswith(prefix)}
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            ctx = cli.command.make_context(init, list(args), obj=cli.Setting(environ, on_host=False))
        with ctx:
            config = cli.build_config(ctx, ctx.params)
    except click.exceptions.Exit:
        return None, None, "it only prints its help or version, and exits"
    except click.ClickException as exc:
        return None, None, exc.format_message()
    own = OWN_OPTIONS.get(init)
    if own is not None:
        for param in cli.command.params:
            given = param.name and ctx.get_parameter_source(param.name) is ParameterSource.COMMANDLINE
            if given and param.name not in own:
                return ctx, None, f"{init} has no option {param.opts[-1]} (that is pyinit's)"
    return ctx, config, None


def work_out(argv: tuple[str, ...] | None, env: Mapping[str, str], origin: Origin) -> Process:
    if argv is None:
        return Process(None, origin)
    words, shell = _unwrap(argv)
    name, rest = program(words)
    init = init_of(name)
    if init is None:
        server, args = program(words)
        return Process(argv, origin, shell=shell, app=words, server=server, keep_alive=_keep_alive(server, args))
    ctx, config, refused = _parse(init, rest, env)
    params = {} if ctx is None else ctx.params
    sources = {} if ctx is None else {name: ctx.get_parameter_source(name) for name in params}
    app = tuple(config.command) if config else tuple(params.get("command", ()))
    app, app_shell = _unwrap(app)
    if init == "tini":
        group = bool(params.get("process_group") or env.get("TINI_KILL_PROCESS_GROUP"))
    else:
        group = config is not None and not config.single_child
    server, args = program(app)
    return Process(
        argv,
        origin,
        shell=shell,
        init=init,
        refused=refused,
        config=config,
        sources=sources,
        hooks_dir=params.get("hooks_dir"),
        group=group,
        app_shell=app_shell,
        app=app,
        server=server,
        keep_alive=_keep_alive(server, args),
    )


def _keep_alive(server: str, args: Sequence[str]) -> float | None:
    flags = KEEP_ALIVE_FLAGS.get(server)
    return None if flags is None else option_seconds(args, *flags)
