"""A real webhook receiver on 127.0.0.1 whose answers a test scripts (500, garbage, 200 ...)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = "SECRETTOKEN"


class Receiver(ThreadingHTTPServer):
    """A webhook receiver on 127.0.0.1 that answers each POST with the next scripted answer.

    ``answers`` holds HTTP status codes or "garbage" (a reply that is not HTTP); once they
    are used up every POST gets 200. ``hits`` records every answer given, ``bodies`` the
    messages accepted with 200.
    """

    daemon_threads = True

    def __init__(self, hang: bool = False, answers: Iterable[int | str] = (), port: int = 0):
        self.bodies: list[dict] = []
        self.hits: list[int | str] = []
        self.answers = list(answers)
        self.hang = hang
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.hang:
                    receiver.release.wait(30)
                answer = receiver.answers.pop(0) if receiver.answers else 200
                receiver.hits.append(answer)
                if answer == "garbage":
                    self.wfile.write(b"SPAM SPAM SPAM\r\n\r\n")
                    self.close_connection = True
                    return
                if answer == 200:
                    receiver.bodies.append(json.loads(body))
                self.send_response(int(answer))
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return hook_url(self.server_address[1])

    def close(self):
        self.release.set()
        self.shutdown()
        self.server_close()


def hook_url(port: int) -> str:
    """Return a webhook URL with a token in its path, as Slack's are."""
    return f"http://127.0.0.1:{port}/hooks/T000/{TOKEN}"
