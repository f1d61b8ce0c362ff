"""The frozen result of parsing: everything the supervisor needs, already checked.

Nothing downstream validates input. If a Config exists, it is runnable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Union

from pyinit.hooks import Hook
from pyinit.spawn import User

if TYPE_CHECKING:  # ipaddress loads only when --drain-ignore is given
    from ipaddress import IPv4Network, IPv6Network

Network = Union["IPv4Network", "IPv6Network"]


@dataclass(frozen=True)
class Config:
    command: tuple[str, ...]
    #: None when pyinit was started in a deleted directory: the child and pre-start hooks inherit
    #: it, as under tini; hooks that run once the child has started run in /.
    cwd: str | None
    single_child: bool = False
    #: FROM -> TO, with the job-control defaults already merged in; TO 0 drops.
    rewrite: Mapping[int, int] = field(default_factory=dict)
    remap_exit: Mapping[int, int] = field(default_factory=dict)
    user: User | None = None
    pdeathsig: int | None = None
    warn_on_reap: bool = False
    verbosity: int = 1
    log_format: str = "text"
    stop_signal: int = 15
    pre_stop_delay: float = 0.0
    stop_command: str | None = None
    kill_timeout: float | None = None
    grace_period: float | None = None
    hook_timeout: float | None = None
    pre_start: tuple[Hook, ...] = ()
    pre_stop: tuple[Hook, ...] = ()
    post_stop: tuple[Hook, ...] = ()
    on_signal: Mapping[int, tuple[Hook, ...]] = field(default_factory=dict)
    ready_file: str | None = None
    ready_port: tuple[str, int] | None = None
    ready_check: str | None = None
    #: With a drain-quiet window the pre-stop delay is the maximum; None keeps it fixed.
    drain_quiet: float | None = None
    drain_min: float = 1.0
    drain_ports: tuple[int, ...] = ()
    drain_ignore: tuple[Network, ...] = ()

    def pre_stop_hooks(self) -> tuple[Hook, ...]:
        """What runs at T0: the stop signal's own ``--on`` hooks, then the pre-stop ones."""
        return self.on_signal.get(self.stop_signal, ()) + self.pre_stop
