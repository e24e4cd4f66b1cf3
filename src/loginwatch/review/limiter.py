"""At most ``rate`` requests in any ``period`` seconds: LookupEvents' quota, per region.

CloudTrail allows LookupEvents 2 requests per second per account and region and
throttles the rest. Regions are read concurrently, each with its own limiter, so a
region never waits for another's quota. A sliding window (the last ``rate`` request
times) rather than a token bucket with a burst: no one-second window, wherever it
starts, ever holds more than ``rate`` requests, which is what the quota says.

A request is counted from when its answer came (``request()``), not from when it was
let through: it reached AWS somewhere in between, and a first request that waits for a
connection can leave long after its turn. Counting from the answer, two requests two
apart always *reach* AWS at least ``period`` apart, whatever the latency.

The clock and the sleep are injected so tests can drive it without sleeping.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

LOOKUP_EVENTS_PER_SECOND = 2
LOOKUP_EVENTS_PERIOD = 1.0


class RateLimiter:
    def __init__(
        self,
        rate: int = LOOKUP_EVENTS_PER_SECOND,
        period: float = LOOKUP_EVENTS_PERIOD,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate < 1 or period <= 0:
            raise ValueError("a rate limiter needs rate >= 1 and a positive period")
        self.rate = rate
        self.period = period
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque(maxlen=rate)
        # One region is read by one thread today; the lock keeps it right if that changes.
        self._lock = threading.Lock()
        self.waited = 0.0  # seconds spent waiting for the quota, for the bench

    def acquire(self) -> float:
        """Wait (if needed) until one more request fits; return when it was let through."""
        with self._lock:
            now = self._clock()
            if len(self._sent) == self.rate:
                free_at = self._sent[0] + self.period
                if now < free_at:
                    self._sleep(free_at - now)
                    self.waited += free_at - now
                    # A sleep may return a little early on some platforms: never go
                    # before the window has moved on.
                    now = max(self._clock(), free_at)
            self._sent.append(now)
            return now

    @contextmanager
    def request(self) -> Iterator[None]:
        """Around one request: wait for its turn, then count it from when it ended."""
        self.acquire()
        try:
            yield
        finally:
            with self._lock:
                self._sent[-1] = max(self._sent[-1], self._clock())
