"""The command line: flags and PYINIT_* variables in, one checked Config out.

Every option can also be set as ``PYINIT_<OPTION>`` (click's auto_envvar_prefix),
for platforms where only the environment of an image can be changed. All
validation happens here, before anything is spawned: a bad value gets one line
naming it, and exit 2. dumb-init's and tini's flags and variables are accepted
with their meaning, so pyinit drops in where their command lines stand today.

The same parser reads a container's command line for ``pyinit-doctor``, on a
machine that is not the container: a ``Setting`` passed as the context's
``obj`` supplies the container's environment and keeps host lookups out.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import signal
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import click

from pyinit import __version__, budget, hooks, kernel
from pyinit.config import Config, Network
from pyinit.hooks import Hook
from pyinit.log import DEBUG, ERROR, INFO, write_line
from pyinit.signals import JOB_CONTROL_STOPS, parse_signal, signal_name
from pyinit.spawn import User, resolve_user
from pyinit.timers import LONGEST

if TYPE_CHECKING:
    from pyinit.probe import ProbeServer


@dataclasses.dataclass(frozen=True)
class Setting:
    """Where a command line is read: by pyinit in its container, or by the doctor from a manifest.

    Off the host (``on_host=False``) what only the container can tell is left
    unknown rather than looked up here: ``--user`` is not resolved (None), the
    ``--hooks-dir`` and ``--ready-file`` paths are not checked, no hooks are
    discovered and the working directory is empty.
    """

    environ: Mapping[str, str] = dataclasses.field(default_factory=lambda: os.environ)
    on_host: bool = True


def _setting(ctx: click.Context | None) -> Setting:
    found = None if ctx is None else ctx.find_object(Setting)
    return Setting() if found is None else found


class _Option(click.Option):
    """An option whose variables are read from the context's Setting, not always from os.environ."""

    def resolve_envvar_value(self, ctx: click.Context) -> str | None:
        names = [self.envvar] if isinstance(self.envvar, str) else list(self.envvar or ())
        if self.allow_from_autoenv and ctx.auto_envvar_prefix is not None and self.name:
            names.append(f"{ctx.auto_envvar_prefix}_{self.name.upper()}")
        environ = _setting(ctx).environ
        return next((environ[name] for name in names if environ.get(name)), None)


option = functools.partial(click.option, cls=_Option)


class _Parsed(click.ParamType):  # type: ignore[type-arg]  # generic only from click 8.4; 3.9 gets 8.1
    """A type whose ``parse`` turns text into a value or raises ValueError naming the text.

    Values that are not text are already parsed (defaults, or click converting
    twice) and pass through.
    """

    def parse(self, text: str) -> Any:
        raise NotImplementedError

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return self.parse(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class _Listed(_Parsed):
    """A repeatable option whose variable lists values split by whitespace or commas."""

    def split_envvar_value(self, rv: str) -> list[str]:
        return [part for part in re.split(r"[\s,]+", rv) if part]


class _Lined(_Parsed):
    """A repeatable command option: its variable holds one command per line."""

    def split_envvar_value(self, rv: str) -> list[str]:
        return [line for line in rv.splitlines() if line.strip()]


class SignalType(_Parsed):
    """A signal name or number; ``received``: one pyinit can get and act on (not KILL, STOP or CHLD)."""

    name = "SIGNAL"

    def __init__(self, *, received: bool = False) -> None:
        self.received = received

    def parse(self, text: str) -> int:
        return parse_signal(text, received=self.received)


class DurationType(_Parsed):
    """Seconds: ``10``, ``1.5``, ``10s``, ``500ms`` or ``2m``."""

    name = "SECONDS"
    _units: ClassVar[dict[str, float]] = {"ms": 0.001, "s": 1.0, "m": 60.0, "": 1.0}

    def parse(self, text: str) -> float:
        match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(ms|s|m|)\s*", text)
        if not match:
            raise ValueError(f"{text!r} is not a duration (seconds, e.g. 10, 1.5, 500ms)")
        value = float(match.group(1)) * self._units[match.group(2)]
        if value > LONGEST:  # beyond, deadlines overflow the kernel's clock (and inf is no duration)
            raise ValueError(f"{text!r} is longer than the maximum of a year ({budget.seconds(LONGEST)})")
        return value


class RewriteType(_Listed):
    name = "FROM:TO"

    def parse(self, text: str) -> tuple[int, int]:
        source, sep, target = text.partition(":")
        if not sep:
            raise ValueError(f"{text!r} is not FROM:TO")
        return parse_signal(source, received=True), parse_signal(target, allow_zero=True)


class ExitRemapType(_Listed):
    name = "CODE[:NEW]"

    def parse(self, text: str) -> tuple[int, int]:
        code, _, new = text.partition(":")
        parts = (code, new or "0")
        if not all(part.isascii() and part.isdigit() and int(part) <= 255 for part in parts):
            raise ValueError(f"{text!r} is not CODE[:NEW] with exit codes from 0 to 255")
        return int(parts[0]), int(parts[1])


class UserType(_Parsed):
    name = "USER[:GROUP]"

    def parse(self, text: str) -> User:
        user = resolve_user(text)
        if not kernel.can_switch_users():
            raise ValueError(
                f"{text!r}: switching users needs root (CAP_SETUID and CAP_SETGID), "
                f"and pyinit runs as uid {os.geteuid()} without them"
            )
        return user

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        return super().convert(value, param, ctx) if _setting(ctx).on_host else None


class HooksDirType(click.Path):
    """A directory that must exist where pyinit runs, so it is only checked there."""

    def __init__(self) -> None:
        super().__init__(exists=True, file_okay=False)

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        return super().convert(value, param, ctx) if _setting(ctx).on_host else value


class CommandType(_Lined):
    name = "CMD"

    def parse(self, text: str) -> str:
        if not text.strip():
            raise ValueError("an empty command")
        return text


class OnHookType(_Lined):
    name = "SIG:CMD"

    def parse(self, text: str) -> tuple[int, str]:
        name, _, command = text.partition(":")
        if not command.strip():
            raise ValueError(f"{text!r} is not SIG:CMD")
        return parse_signal(name, received=True), command


def _is_port(text: str) -> bool:
    return text.isascii() and text.isdigit() and 1 <= int(text) <= 65535


class AddressType(_Parsed):
    """``[HOST:]PORT``, IPv6 in brackets; no host means every address, as probes come from outside."""

    name = "[HOST:]PORT"

    def parse(self, text: str) -> tuple[str, int]:
        match = re.fullmatch(r"(?:(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]*)):)?([0-9]+)", text)
        host = (match.group(1) or match.group(2) or "") if match else ""
        if not (match and _is_port(match.group(3)) and _is_host(host)):
            raise ValueError(f"{text!r} is not [HOST:]PORT with a port from 1 to 65535 (IPv6 as [::1]:PORT)")
        return host, int(match.group(3))


def _is_host(host: str) -> bool:
    """Empty, an IPv6 or IPv4 literal, or an ASCII host name (resolved when the port is bound)."""
    if ":" in host:
        import ipaddress

        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return False
        return True
    labels = host.split(".") if host else []
    return len(host) <= 253 and all(re.fullmatch(r"[A-Za-z0-9-]{1,63}", label) for label in labels)


class PortType(_Listed):
    name = "PORT"

    def parse(self, text: str) -> int:
        if not _is_port(text.strip()):
            raise ValueError(f"{text!r} is not a port from 1 to 65535")
        return int(text)


class NetworkType(_Listed):
    """An IPv4 or IPv6 network in CIDR notation; a bare address is a network of one."""

    name = "CIDR"

    def parse(self, text: str) -> Network:
        import ipaddress

        try:
            return ipaddress.ip_network(text.strip(), strict=False)
        except ValueError:
            raise ValueError(f"{text!r} is not a network (CIDR, e.g. 10.0.0.0/8 or fd00::/8)") from None


def _check_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An http(s) URL the probe thread can ask without a parser of its own: printable ASCII, a host, a port."""
    if value is None:
        return None
    import urllib.parse  # only with --ready-check: it brings ipaddress along

    try:
        split = urllib.parse.urlsplit(value)
        valid = (
            re.fullmatch(r"[!-~]+", value) is not None
            and split.scheme in ("http", "https")
            and bool(split.hostname)
            and _is_host(split.hostname or "")
            and split.username is None
            and not split.fragment
            and split.port != 0
        )
    except ValueError:  # a port out of range, a bad [IPv6] literal
        valid = False
    if not valid:
        raise click.BadParameter(
            f"{value!r} is not an http:// or https:// URL with a host and a port from 1 to 65535", ctx, param
        )
    return value


def _check_parent(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A file pyinit will create later, after it has moved to /: absolute, in a directory that exists."""
    if value is None or not _setting(ctx).on_host:
        return value
    if not os.path.isabs(value) and _cwd() is None:
        raise click.BadParameter(f"{value!r} is relative, and the working directory is gone", ctx, param)
    path = os.path.abspath(value)
    if os.path.isdir(path):
        raise click.BadParameter(f"{value!r} is a directory", ctx, param)
    parent, name = os.path.split(path)
    if not os.path.isdir(parent):
        raise click.BadParameter(f"{value!r}: its directory does not exist", ctx, param)
    try:
        longest = os.pathconf(parent, "PC_NAME_MAX")
    except OSError:  # a filesystem that does not say: the usual limit
        longest = 255
    if len(os.fsencode(name)) > longest:
        raise click.BadParameter(f"{value!r}: its name is longer than {longest} bytes", ctx, param)
    return path


def _cwd() -> str | None:
    """The working directory, or None when it was deleted: the child then inherits it, as under tini."""
    try:
        return os.getcwd()
    except FileNotFoundError:
        return None


SIGNAL, DURATION = SignalType(), DurationType()
CONTEXT = {
    "auto_envvar_prefix": "PYINIT",
    "help_option_names": ["-h", "--help"],
    "allow_interspersed_args": False,
    "max_content_width": 100,
}


@click.command(context_settings=CONTEXT, epilog="Every option can also be set as PYINIT_<OPTION>.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@option(
    "-c", "--single-child", is_flag=True, help="Forward signals to the child only, not its process group (no setsid)."
)
@option(
    "-r",
    "--rewrite",
    type=RewriteType(),
    multiple=True,
    help="Rewrite signal FROM to TO before forwarding; TO 0 drops it. Names or numbers.",
)
@option(
    "-e",
    "--remap-exit",
    type=ExitRemapType(),
    multiple=True,
    help="Exit with NEW (default 0) when the child exits with CODE.",
)
@option("-u", "--user", type=UserType(), help="Run the child and hooks as this user (names or ids).")
@option("-p", "--pdeathsig", type=SIGNAL, help="Signal pyinit gets when its parent dies.")
@option("-s", "--subreaper", is_flag=True, help="Reap as a subreaper (automatic when not PID 1).")
@option("-g", "--process-group", is_flag=True, help="Signal the child's process group (the default).")
@option("-w", "--warn-on-reap", is_flag=True, help="Log every zombie that is reaped.")
@option("-v", "--verbose", count=True, help="More log output; repeat for more.")
@option("-q", "--quiet", is_flag=True, help="Only log errors.")
@option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@option(
    "--stop-signal",
    type=SignalType(received=True),
    default="TERM",
    show_default=True,
    help="The signal that starts the shutdown sequence.",
)
@option(
    "--pre-stop-delay",
    type=DURATION,
    default=0.0,
    help="Keep the child serving this long after the stop signal, before passing it on.",
)
@option(
    "--drain-quiet",
    type=DURATION,
    help="Pass the stop on once the child's ports have had no new connection and no data for this long;"
    " --pre-stop-delay becomes the maximum.",
)
@option(
    "--drain-min",
    type=DURATION,
    default=1.0,
    help="With --drain-quiet, never pass the stop on sooner (the request rate is measured meanwhile). Default 1s.",
)
@option(
    "--drain-ports", type=PortType(), multiple=True, help="Watch these TCP ports, not the ones the child listens on."
)
@option(
    "--drain-ignore",
    type=NetworkType(),
    multiple=True,
    help="Connections from this network never count as traffic (liveness probes, for example).",
)
@option("--stop-command", type=CommandType(), help="Run this instead of forwarding the stop signal.")
@option("--kill-timeout", type=DURATION, help="SIGKILL the whole tree this long after the stop is sent.")
@option("--grace-period", type=DURATION, help="The platform's own limit; pyinit plans to finish inside it.")
@option("--hook-timeout", type=DURATION, help="Kill any hook that runs longer.")
@option("--pre-start", type=CommandType(), multiple=True, help="Run before the child starts; a failure aborts.")
@option("--pre-stop", type=CommandType(), multiple=True, help="Run at the stop signal, during the delay.")
@option("--post-stop", type=CommandType(), multiple=True, help="Run after the child has exited.")
@option("--on", type=OnHookType(), multiple=True, help="Run CMD when SIG arrives, before it is forwarded.")
@option(
    "--hooks-dir",
    type=HooksDirType(),
    help="Also run DIR/pre-start.d, pre-stop.d, post-stop.d.",
)
@option("--ready-file", callback=_check_parent, help="Created once the child runs, removed at the stop signal.")
@option("--ready-port", type=AddressType(), help="Serve GET /ready and /live over HTTP.")
@option("--ready-check", callback=_check_url, help="Before the stop, /ready answers with the app's own status at URL.")
@click.version_option(__version__, "-V", "--version", prog_name="pyinit")
@click.pass_context
def command(ctx: click.Context, /, **params: Any) -> Config:
    """Run COMMAND as a well-behaved PID 1: forward signals, reap zombies, drain on stop."""
    return build_config(ctx, params)


def _defaulted(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) in (click.core.ParameterSource.DEFAULT, None)


def _verbosity(ctx: click.Context, params: dict[str, Any]) -> int:
    """-q / -v, else the verbosity dumb-init's or tini's variables ask for."""
    if params["quiet"]:
        return ERROR
    if not _defaulted(ctx, "verbose"):
        return min(INFO + int(params["verbose"]), DEBUG)
    environ = _setting(ctx).environ
    tini = environ.get("TINI_VERBOSITY", "")
    if tini.isascii() and tini.isdigit():
        return min(int(tini), DEBUG)
    return DEBUG if environ.get("DUMB_INIT_DEBUG") == "1" else INFO


def build_config(ctx: click.Context, params: dict[str, Any]) -> Config:
    setting = _setting(ctx)
    single_child = params["single_child"]
    if _defaulted(ctx, "single_child") and setting.environ.get("DUMB_INIT_SETSID") == "0":
        single_child = True
    # In session mode the child cannot be stopped by a terminal: TSTP & co become STOP.
    rewrite = {} if single_child else {number: int(signal.SIGSTOP) for number in JOB_CONTROL_STOPS}
    rewrite.update(dict(params["rewrite"]))
    _check_stop_signal(ctx, params["stop_signal"], rewrite, params["stop_command"])
    if params["ready_check"] and not params["ready_port"]:
        raise click.UsageError("--ready-check needs --ready-port to serve the answer on")

    hooks_dir = params["hooks_dir"] if setting.on_host else None
    try:
        found = {phase: hooks.discover(hooks_dir, phase) if hooks_dir else () for phase in hooks.PHASES}
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param_hint="'--hooks-dir'") from None

    def phase_hooks(phase: str) -> tuple[Hook, ...]:
        option = phase.replace("-", "_")
        return tuple(Hook.command(phase, command) for command in params[option]) + found[phase]

    on_signal: dict[int, tuple[Hook, ...]] = {}
    for number, command in params["on"]:
        on_signal[number] = (*on_signal.get(number, ()), Hook.command("on-signal", command))

    config = Config(
        command=tuple(params["command"]),
        cwd=_cwd() if setting.on_host else "",
        single_child=single_child,
        rewrite=rewrite,
        remap_exit=dict(params["remap_exit"]),
        user=params["user"],
        pdeathsig=params["pdeathsig"],
        warn_on_reap=params["warn_on_reap"],
        verbosity=_verbosity(ctx, params),
        log_format=params["log_format"],
        stop_signal=params["stop_signal"],
        pre_stop_delay=params["pre_stop_delay"],
        stop_command=params["stop_command"],
        kill_timeout=params["kill_timeout"],
        grace_period=params["grace_period"],
        hook_timeout=params["hook_timeout"],
        pre_start=phase_hooks("pre-start"),
        pre_stop=phase_hooks("pre-stop"),
        post_stop=phase_hooks("post-stop"),
        on_signal=on_signal,
        ready_file=params["ready_file"],
        ready_port=params["ready_port"],
        ready_check=params["ready_check"],
        drain_quiet=params["drain_quiet"],
        drain_min=params["drain_min"],
        drain_ports=tuple(sorted(set(params["drain_ports"]))),
        drain_ignore=tuple(params["drain_ignore"]),
    )
    _check_drain(ctx, config)
    try:
        kill_timeout = budget.plan_for(config, config.grace_period)
    except budget.BudgetError as exc:
        raise click.UsageError(str(exc)) from None
    return dataclasses.replace(config, kill_timeout=kill_timeout)


def _check_stop_signal(ctx: click.Context, stop: int, rewrite: Mapping[int, int], stop_command: str | None) -> None:
    """A stop signal whose forward suspends rather than stops cannot start a drain that ends.

    After forwarding TSTP, TTIN or TTOU pyinit suspends itself (dumb-init's job
    control), so its kill deadline would never fire; a stop rewritten to STOP
    suspends the child. With --stop-command nothing is forwarded: either is fine.
    """
    if stop_command:
        return
    if stop in JOB_CONTROL_STOPS:
        reason = "pyinit suspends itself after forwarding a job-control stop, so its kill deadline never fires"
    elif rewrite.get(stop, stop) == signal.SIGSTOP:
        reason = "it would be forwarded as SIGSTOP, which suspends the child instead of stopping it"
    else:
        return
    raise click.BadParameter(f"{signal_name(stop)}: {reason} (use --stop-command)", ctx, param_hint="'--stop-signal'")


def _check_drain(ctx: click.Context, config: Config) -> None:
    if config.ready_port is not None and config.ready_port[1] in config.drain_ports:
        raise click.BadParameter(
            f"{config.ready_port[1]} is --ready-port's port: probes are never traffic",
            ctx,
            param_hint="'--drain-ports'",
        )
    if config.drain_quiet is None:
        return
    if config.drain_quiet <= 0:
        raise click.BadParameter("must be more than 0", ctx, param_hint="'--drain-quiet'")
    if config.pre_stop_delay <= 0:
        raise click.UsageError("--drain-quiet needs --pre-stop-delay, the longest the drain may wait")


def run(argv: Sequence[str]) -> int:
    """Parse ``argv`` and bind the probe port; then hand over to the loop. Bad input: one line, exit 2."""
    try:
        result = command.main(args=list(argv), prog_name="pyinit", standalone_mode=False)
        if isinstance(result, int):  # --help or --version
            return result
        server = _bind_probe(result)
    except click.ClickException as exc:
        write_line(f"[pyinit] error: {exc.format_message()}")
        return 2
    from pyinit.supervisor import boot

    return boot(result, server)


def _bind_probe(config: Config) -> ProbeServer | None:
    """Bind --ready-port before anything is spawned, so a taken port is bad input, not a late failure."""
    if config.ready_port is None:
        return None
    from pyinit import probe

    try:
        return probe.bind(*config.ready_port, config.ready_check)
    except OSError as exc:  # its strerror names the option and the value
        raise click.UsageError(exc.strerror or str(exc)) from None
