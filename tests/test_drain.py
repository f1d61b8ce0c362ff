"""The traffic-aware drain (issue 11): the stop follows the end of the traffic, not a guess.

A real HTTP app (``helpers/web_app.py``) runs under the real pyinit; real
clients in threads of this test send it requests over loopback, with and
without keep-alive; pyinit reads the kernel's socket table. The app prints the
CLOCK_MONOTONIC of its SIGTERM, so the test can say when the stop arrived
relative to the last request it sent. Lower bounds are tight (the stop must
never come while requests arrive), upper bounds generous (it must come well
before the maximum, on a noisy machine).
"""

from __future__ import annotations

import http.client
import os
import signal
import threading
import time
from typing import Any

import pytest
from helpers.harness import JSON, PY, PYINIT, SIGPRINT, SLACK, WAIT, Pyinit, helper, wait_for
from helpers.shutdown_support import free_port

WEB = [PY, helper("web_app.py")]
QUIET = 1.0
MAXIMUM = 30.0
#: How far before the maximum a stop that followed the traffic must come.
WELL_BEFORE = 10.0


class Client:
    """Sends GET / to the app from a thread, every ``interval`` seconds, until ``until`` (monotonic).

    ``keepalive`` reuses one connection; otherwise each request is a connection
    of its own (``Connection: close``). ``source`` binds the client's address.
    """

    def __init__(
        self,
        port: int,
        *,
        host: str = "127.0.0.1",
        keepalive: bool = True,
        interval: float = 0.05,
        source: str | None = None,
        count: int | None = None,
    ) -> None:
        self.host, self.port, self.keepalive, self.interval = host, port, keepalive, interval
        self.source = None if source is None else (source, 0)
        self.count = count
        self.until = float("inf")
        self.sent = 0
        self.last_sent: float | None = None
        self.last_answered: float | None = None  #: when the answer to the last request had been read
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=WAIT, source_address=self.source)

    def _run(self) -> None:
        connection = self._connect() if self.keepalive else None
        while not self._stop.is_set() and time.monotonic() < self.until:
            if self.count is not None and self.sent >= self.count:
                break
            one = connection or self._connect()
            try:
                self.last_sent = time.monotonic()
                one.request("GET", "/", headers={} if self.keepalive else {"Connection": "close"})
                one.getresponse().read()
                self.last_answered = time.monotonic()
                self.sent += 1
            except (OSError, http.client.HTTPException) as exc:
                self.errors.append(repr(exc))
                return
            finally:
                if connection is None:
                    one.close()
            self._stop.wait(self.interval)
        if connection is not None:
            connection.close()

    def finish(self) -> float:
        """Wait for the client to end (``until`` or ``count``); return when it sent its last request."""
        self._thread.join(WAIT)
        assert not self._thread.is_alive(), "the client did not finish"
        assert not self.errors, self.errors
        assert self.last_sent is not None, "the client sent nothing"
        return self.last_sent

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(WAIT)


class Stage:
    """pyinit with the web app under it, and the clients that talk to the app; all ended afterwards."""

    def __init__(self) -> None:
        self.running: list[Pyinit] = []
        self.clients: list[Client] = []

    def __call__(self, args: list[str], app: list[str] = (), mode: str = "child", **kw: Any) -> tuple[Pyinit, int]:
        """Start ``pyinit ARGS -- web_app.py APP`` (``kw`` as for Pyinit) and wait until it serves.

        Returns the pyinit and the app's port.
        """
        init = Pyinit([*args, "--", *WEB, *app], mode=mode, **kw)
        self.running.append(init)
        return init, int(init.expect("serving port=").split("=")[1])

    def client(self, port: int, **kw) -> Client:
        made = Client(port, **kw)
        self.clients.append(made)
        return made

    def close(self) -> None:
        for made in self.clients:
            made.stop()
        for init in self.running:
            init.close()


@pytest.fixture
def run():
    stage = Stage()
    yield stage
    stage.close()


def got_term(init: Pyinit) -> float:
    return float(init.expect("got SIGTERM at").rsplit(" ", 1)[1])


def stop_after_traffic(init: Pyinit, sender: Client, seconds: float) -> tuple[float, float]:
    """Wait for traffic, send the stop signal (T0); the client stops ``seconds`` later. Returns (T0, last sent)."""
    wait_for(lambda: sender.sent >= 3, "the client's first requests")
    t0 = time.monotonic()
    sender.until = t0 + seconds
    init.kill(signal.SIGTERM)
    return t0, sender.finish()


# -- the stop follows the traffic ----------------------------------------------------------------


@pytest.mark.parametrize("keepalive", [True, False], ids=["keep-alive", "connection-per-request"])
def test_the_stop_comes_a_quiet_window_after_the_last_request_not_at_the_maximum(run, mode, keepalive):
    init, port = run(["--drain-quiet", f"{QUIET:g}", "--pre-stop-delay", f"{MAXIMUM:g}"], mode=mode)
    sender = run.client(port, keepalive=keepalive)
    t0, last = stop_after_traffic(init, sender, 1.5)
    stopped = got_term(init)
    assert stopped >= last + QUIET - SLACK, init.err
    assert stopped < t0 + MAXIMUM - WELL_BEFORE, init.err
    assert init.wait() == 0
    assert "traffic had been quiet for" in init.stderr


def test_ipv6_traffic_is_watched(run):
    init, port = run(["--drain-quiet", f"{QUIET:g}", "--pre-stop-delay", f"{MAXIMUM:g}"], ["--host", "::1"])
    sender = run.client(port, host="::1", keepalive=False)
    _t0, last = stop_after_traffic(init, sender, 1.5)
    assert got_term(init) >= last + QUIET - SLACK, init.err
    assert init.wait() == 0
    assert "(from ::1;" in init.expect("last new connection on")


def test_ipv4_clients_of_a_dual_stack_listener_are_watched(run):
    init, port = run(["--drain-quiet", f"{QUIET:g}", "--pre-stop-delay", f"{MAXIMUM:g}"], ["--host", "::"])
    sender = run.client(port, keepalive=False)
    _t0, last = stop_after_traffic(init, sender, 1.5)
    assert got_term(init) >= last + QUIET - SLACK, init.err
    assert init.wait() == 0
    assert "(from 127.0.0.1;" in init.expect("last new connection on")


def test_short_connections_between_polls_are_each_seen(run):
    """50 connections of one request each, 20 ms apart: most open and close between two 100 ms polls."""
    init, port = run([*JSON, "--drain-quiet", f"{QUIET:g}", "--pre-stop-delay", f"{MAXIMUM:g}"])
    init.kill(signal.SIGTERM)
    init.expect_event("traffic_watch")
    sender = run.client(port, keepalive=False, interval=0.02, count=50)
    last = sender.finish()
    assert got_term(init) >= last + QUIET - SLACK, init.err
    assert init.wait() == 0
    seen = init.event("traffic_seen")
    assert seen["connections"] == 50, seen


def test_idle_keepalive_connections_do_not_hold_the_stop(run):
    init, port = run([*JSON, "--drain-quiet", f"{QUIET:g}", "--pre-stop-delay", f"{MAXIMUM:g}"])
    idle = []
    for _ in range(3):  # one request each, then the connections stay open and idle
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
        connection.request("GET", "/")
        connection.getresponse().read()
        idle.append(connection)
    try:
        t0 = time.monotonic()
        init.kill(signal.SIGTERM)
        assert got_term(init) < t0 + MAXIMUM - WELL_BEFORE, init.err
        assert init.wait() == 0
    finally:
        for connection in idle:
            connection.close()
    quiet = init.event("traffic_quiet")
    assert quiet["open"] == 3, quiet
    assert quiet["busy"] == 0, quiet


def test_pre_stop_hooks_still_finish_first(run, tmp_path, gate):
    """No traffic at all: the drain finds the port quiet after its window (1 s: five 0.2 s --drain-min
    gaps with no request in them), and the maximum (2 s) passes too; a pre-stop hook still holds the stop."""
    maximum = 2.0
    done = tmp_path / "hook-done"
    hook = gate("hook")
    init, _port = run(
        [
            *JSON,
            "--drain-quiet",
            "0.2",
            "--drain-min",
            "0.2",
            "--pre-stop-delay",
            f"{maximum:g}",
            "--pre-stop",
            f"{hook.command}; echo done > {done}",
        ]
    )
    init.kill(signal.SIGTERM)
    hook.reached()
    init.expect_event("delay_over")  # quiet long since, and the maximum over: only the hook holds the stop now
    assert "signal_forwarded" not in init.names, init.stderr  # the same pipe: it would have come first
    hook.release()
    got_term(init)
    assert done.exists(), init.stderr
    assert init.wait() == 0
    names = init.names
    assert names.index("delay_over") < names.index("pre_stop_done") < names.index("signal_forwarded"), names
    quiet = init.event("traffic_quiet")  # the drain had found it quiet, before the maximum
    assert quiet["window"] < maximum <= quiet["quiet_for"], quiet


# -- what does not count ---------------------------------------------------------------------------


@pytest.mark.parametrize("ignored", [True, False], ids=["ignored", "not-ignored"])
def test_drain_ignore_keeps_a_probe_from_holding_the_stop(run, ignored):
    """A probe from 127.0.0.2 keeps hitting the app's port; the load balancer's traffic stops at T0 + 1.5 s."""
    maximum = 6.0
    ignore = ["--drain-ignore", "127.0.0.2/32"] if ignored else []
    init, port = run([*ignore, "--drain-quiet", f"{QUIET:g}", "--pre-stop-delay", f"{maximum:g}"])
    probe = run.client(port, keepalive=False, interval=0.2, source="127.0.0.2")
    sender = run.client(port, source="127.0.0.1")
    t0, last = stop_after_traffic(init, sender, 1.5)
    stopped = got_term(init)
    probe.stop()
    assert init.wait() == 0
    log = init.stderr
    if ignored:
        assert last + QUIET - SLACK <= stopped < t0 + maximum, log
        assert "traffic had been quiet" in log
        assert "127.0.0.2" not in log
    else:
        assert stopped >= t0 + maximum - SLACK, log
        assert f"traffic was not quiet for 1.00s within the {maximum:g}s maximum" in log


def test_the_readiness_port_never_counts(run):
    """Probes hammer pyinit's /ready and /live through the drain; only the app's own port is watched."""
    probe_port = free_port()
    init, port = run(
        [
            *JSON,
            "--ready-port",
            f"127.0.0.1:{probe_port}",
            "--drain-quiet",
            "0.5",
            "--drain-min",
            "0.5",
            "--pre-stop-delay",
            f"{MAXIMUM:g}",
        ]
    )
    prober = run.client(probe_port, keepalive=False, interval=0.05)
    wait_for(lambda: prober.sent >= 3, "the probes to reach pyinit")
    t0 = time.monotonic()
    init.kill(signal.SIGTERM)
    assert got_term(init) < t0 + MAXIMUM - WELL_BEFORE, init.err
    prober.stop()
    assert init.wait() == 0
    watched = init.event("traffic_watch")
    assert watched["ports"] == [port], watched


# -- when pyinit cannot see -------------------------------------------------------------------------


def test_no_listener_means_the_full_delay_and_one_line_saying_why(start):
    delay = 2.0
    init = start(
        [*SIGPRINT, "--exit-on", "TERM:0"],
        env={"PYINIT_DRAIN_QUIET": "0.2", "PYINIT_DRAIN_MIN": "0.2", "PYINIT_PRE_STOP_DELAY": f"{delay:g}"},
    )
    init.expect("ready pid=")
    t0 = time.monotonic()
    init.kill(signal.SIGTERM)
    init.expect("signal SIGTERM")
    assert time.monotonic() >= t0 + delay - SLACK
    assert init.wait() == 0
    unseen = [line for line in init.err if "no listening TCP port" in line]
    assert len(unseen) == 1, init.err
    assert f"waiting the full pre-stop delay ({delay:g}s)" in unseen[0]


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping CAP_SYS_PTRACE from the bounding set needs root")
def test_when_proc_hides_the_childs_descriptors_its_uids_listeners_are_watched(run):
    """pyinit without CAP_SYS_PTRACE, and a non-dumpable app: /proc denies its fds, so discovery
    falls back to the listening sockets of the app's uid (and the socket table needs no capability)."""
    no_ptrace = ["setpriv", "--bounding-set", "-sys_ptrace", "--inh-caps", "-sys_ptrace"]  # it execs pyinit
    init, port = run(
        ["--drain-quiet", f"{QUIET:g}", "--pre-stop-delay", "3"], ["--undumpable"], program=[*no_ptrace, *PYINIT]
    )
    init.kill(signal.SIGTERM)
    line = init.expect("watching traffic on")
    assert f":{port}" in line, line
    assert f"(listening as uid {os.getuid()}: /proc denied reading the child's descriptors)" in line, line
    got_term(init)
    assert init.wait() == 0


# -- what the timeline says --------------------------------------------------------------------------


def test_a_fixed_delay_that_was_too_short_is_called_out(run):
    init, port = run([*JSON, "--pre-stop-delay", "1"])
    sender = run.client(port)
    wait_for(lambda: sender.sent >= 3, "the client's first requests")
    init.kill(signal.SIGTERM)
    got_term(init)
    sender.stop()
    assert init.wait() == 0
    warning = init.event("traffic_not_quiet")
    assert warning["level"] == "warning", warning
    assert "raise --pre-stop-delay above 1s" in warning["message"], warning
    assert warning["quiet_for"] < QUIET, warning
    # the last data came during the delay: after T0, and no later than the delay's end on pyinit's clock
    seen = init.event("traffic_seen")
    assert 0 <= seen["last_data_offset"] <= init.offset("delay_over"), init.stderr


def test_the_measured_propagation_is_in_the_timeline_with_a_fixed_delay(run):
    init, port = run([*JSON, "--pre-stop-delay", "4"])
    sender = run.client(port, keepalive=False)
    t0, last = stop_after_traffic(init, sender, 1.5)
    answered = sender.last_answered
    assert answered is not None
    stopped = got_term(init)
    assert init.wait() == 0
    seen, quiet = init.event("traffic_seen"), init.event("traffic_quiet")
    # pyinit's T0, on the one CLOCK_MONOTONIC: no earlier than our t0 (we sent the signal after it),
    # and no later than the app's SIGTERM less the offset of traffic_quiet, logged before the kill
    t0_at_latest = stopped - quiet["offset"]
    # the last request was sent at `last` and answered by `answered`: pyinit dates its data no earlier
    # than it was sent (less a kernel tick), and within a poll or so of its answer
    assert last - t0_at_latest - SLACK <= seen["last_data_offset"] <= answered - t0 + 0.5, seen
    assert seen["last_connection_source"] == "127.0.0.1", seen
    assert quiet["quiet_for"] >= 4 - (answered - t0) - 0.5, quiet


def test_a_stream_that_never_goes_quiet_gets_the_maximum_and_is_counted(run):
    maximum = 3.0
    init, port = run(["--drain-quiet", f"{QUIET:g}", "--pre-stop-delay", f"{maximum:g}"])
    stream = run.client(port, interval=0.1)  # never stops on its own
    wait_for(lambda: stream.sent >= 3, "the stream's first requests")
    t0 = time.monotonic()
    init.kill(signal.SIGTERM)
    assert got_term(init) >= t0 + maximum - SLACK
    line = init.expect("traffic was not quiet")
    assert "1 connection(s) still open, 1 received data" in line, line


def test_requests_after_the_stop_are_reported_as_late(run):
    """The app keeps serving 1.5 s after its SIGTERM, and the client does not stop: pyinit says so."""
    init, port = run([*JSON, "--pre-stop-delay", "1"], ["--linger", "1.5"])
    sender = run.client(port, interval=0.1)
    wait_for(lambda: sender.sent >= 3, "the client's first requests")
    init.kill(signal.SIGTERM)
    stopped = got_term(init)
    wait_for(lambda: sender.last_sent is not None and sender.last_sent > stopped + 0.5, "requests after the stop")
    assert init.wait() == 0
    late = init.event("late_traffic")
    assert late["level"] == "warning", late
    assert late["late"] >= 2, late
    assert "after the stop was passed on" in late["message"], late
