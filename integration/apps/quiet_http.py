"""What the test apps' HTTP handlers share: a plain-text 200 and no access log.

The apps are copied together into /apps, so ``from quiet_http import
QuietHandler`` works from each of them.
"""

from http.server import BaseHTTPRequestHandler


class QuietHandler(BaseHTTPRequestHandler):
    def answer(self, text: str) -> None:
        body = (text + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *a: object) -> None:  # noqa: A002
        pass
