"""``balancer.py READY_URL APP_URL LINGER``: a load balancer's view of a stop, from inside the container.

For a container without a network of its own (``network_mode=none``), where the host cannot
reach the app. Like a balancer with the pod in rotation, it sends GET APP_URL and checks
READY_URL, over and over. Once READY_URL answers 503 it goes on sending for LINGER seconds, the
time the pod's removal takes to reach a real balancer, and then stops. Every line goes to PID 1's
stdout, so the report lands in the container's log next to pyinit's own lines:

    balancer: sending
    balancer: readiness 503 after 57 requests; then 23 requests in 0.5s, answered [200]
"""

import sys
import time
import urllib.error
import urllib.request

ready_url, app_url, linger = sys.argv[1], sys.argv[2], float(sys.argv[3])


def status(url: str) -> int:
    """The HTTP status, or 0 if the request got no answer at all."""
    try:
        return urllib.request.urlopen(url, timeout=10).status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


with open("/proc/1/fd/1", "w") as log:

    def say(line: str) -> None:
        log.write(f"balancer: {line}\n")
        log.flush()

    sent = 0
    while status(ready_url) != 503:
        served = status(app_url)
        sent += 1
        if served != 200:
            say(f"request {sent} got {served} while the app was ready")
            sys.exit(1)
        if sent == 1:
            say("sending")
        time.sleep(0.02)  # a request every 20 ms or so: the pace of a busy balancer
    answers = []
    until = time.monotonic() + linger
    while time.monotonic() < until:
        answers.append(status(app_url))
        time.sleep(0.02)
    answered = sorted(set(answers))
    say(f"readiness 503 after {sent} requests; then {len(answers)} requests in {linger:g}s, answered {answered}")
