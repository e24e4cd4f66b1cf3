"""Fault injection at the HTTP layer: throttling, 500/503 answers and dropped connections.

Hooks ``before-send`` on botocore clients, so an injected fault goes through
botocore's real retry logic exactly like a fault from AWS would. The AWS
emulator behind it never sees the failed attempts.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError
from botocore.httpsession import URLLib3Session

# "lost": the request reaches the server and is processed, then the answer is lost
# (the nastiest case for check-then-create: the retry finds the work already done).
KINDS = ("throttle", "500", "503", "drop", "lost")


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def _throttle(protocol: str, url: str) -> AWSResponse:
    """A throttling answer in the service's own protocol, so botocore parses the code."""
    if protocol == "query":
        body = b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>"
        return AWSResponse(url, 400, {"Content-Type": "text/xml"}, _Raw(body))
    if protocol == "json":
        body = b'{"__type":"ThrottlingException","message":"Rate exceeded"}'
        return AWSResponse(url, 400, {"Content-Type": "application/x-amz-json-1.1"}, _Raw(body))
    if protocol == "rest-json":
        headers = {
            "Content-Type": "application/json",
            "x-amzn-ErrorType": "TooManyRequestsException",
        }
        return AWSResponse(url, 429, headers, _Raw(b'{"message":"Rate exceeded"}'))
    if protocol == "rest-xml":
        body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
        return AWSResponse(url, 503, {"Content-Type": "application/xml"}, _Raw(body))
    return AWSResponse(url, 503, {}, _Raw(b""))  # CBOR protocols: a transient status


class FaultInjector:
    """Fails a seeded-random share of HTTP attempts; thread-safe; counts what it did."""

    def __init__(self, rate: float = 0.2, seed: int = 7, kinds: tuple[str, ...] = KINDS) -> None:
        self.rate = rate
        self.kinds = kinds
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.injected: Counter[str] = Counter()
        self.attempts = 0
        self.script: list[str] = []  # forced faults, consumed first (for targeted tests)
        self._http = URLLib3Session()

    def attach(self, client: Any) -> Any:
        protocol = client.meta.service_model.protocol

        def hook(request: Any, **_: Any) -> AWSResponse | None:
            kind = self._next()
            if kind is None:
                return None
            if kind == "drop":
                raise ConnectionClosedError(endpoint_url=request.url)
            if kind == "lost":
                self._http.send(request)  # the server does the work ...
                raise ConnectionClosedError(
                    endpoint_url=request.url
                )  # ... the answer never arrives
            if kind == "throttle":
                return _throttle(protocol, request.url)
            return AWSResponse(request.url, int(kind), {}, _Raw(b""))

        client.meta.events.register("before-send", hook)
        return client

    def _next(self) -> str | None:
        with self._lock:
            self.attempts += 1
            if self.script:
                kind = self.script.pop(0)
            elif self._rng.random() < self.rate:
                kind = self._rng.choice(self.kinds)
            else:
                return None
            self.injected[kind] += 1
            return kind


def attach_to_every_client(aws: Any, injector: FaultInjector) -> None:
    """Make every client this Aws creates (now or later) go through the injector."""
    made = getattr(aws, "_faulty", set())
    original = aws.client

    def client(service: str, region: str | None = None) -> Any:
        result = original(service, region)
        if id(result) not in made:
            injector.attach(result)
            made.add(id(result))
        return result

    aws._faulty = made
    aws.client = client
