"""A local HTTP server that stands in for a Slack incoming webhook.

The demo shows what it caught; tests script its answers (status, body,
headers) per request and read back what was posted, so delivery, retries and
message content are checked for real over a socket rather than by patching.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_HOST = "127.0.0.1"


@dataclass
class SlackReply:
    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class SlackRequest:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 0  # what the stub answered

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class SlackStub:
    """Threaded webhook catcher on 127.0.0.1 with a queue of scripted replies."""

    def __init__(self) -> None:
        self.requests: list[SlackRequest] = []
        self.replies: list[SlackReply] = []
        self.default_reply = SlackReply()
        # Decides the answer when nothing is scripted (e.g. a rate limit); None: default_reply.
        self.responder: Callable[[], SlackReply] | None = None
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with stub._lock:
                    request = SlackRequest(self.path, dict(self.headers), body)
                    stub.requests.append(request)
                    if stub.replies:
                        reply = stub.replies.pop(0)
                    elif stub.responder is not None:
                        reply = stub.responder()
                    else:
                        reply = stub.default_reply
                    request.status = reply.status
                payload = reply.body.encode()
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        self._server = ThreadingHTTPServer((_HOST, 0), Handler)
        # A short poll interval: shutdown() waits up to one interval for the loop to notice.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return (
            f"http://{_HOST}:{self._server.server_port}/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX"
        )

    def start(self) -> SlackStub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def script(self, *replies: SlackReply) -> None:
        with self._lock:
            self.replies.extend(replies)
