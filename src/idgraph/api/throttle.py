"""Slows down key guessing: after ``failures`` failed authentications from one client
address within ``window`` seconds (counted from the first of them), every request from
that address that needs a key gets HTTP 429 with ``Retry-After`` until the window ends.
Other addresses are not affected.

State is per process (each uvicorn worker counts its own) and bounded: at most
``max_clients`` addresses are remembered, the oldest forgotten first.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

MAX_CLIENTS = 10_000


@dataclass
class Window:
    start: float
    failures: int


class AuthThrottle:
    def __init__(
        self,
        failures: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self.failures = failures
        self.window = window
        self.clock = clock
        self.max_clients = max_clients
        self.clients: OrderedDict[str, Window] = OrderedDict()

    def retry_after(self, client: str) -> int | None:
        """Whole seconds until ``client`` may try again; None if it may now."""
        current = self._current(client)
        if current is None or current.failures < self.failures:
            return None
        return max(1, math.ceil(current.start + self.window - self.clock()))

    def failed(self, client: str) -> None:
        """Count a failed authentication from ``client``."""
        current = self._current(client)
        if current is None:
            current = self.clients[client] = Window(self.clock(), 0)
            while len(self.clients) > self.max_clients:
                self.clients.popitem(last=False)
        current.failures += 1

    def _current(self, client: str) -> Window | None:
        """The client's window, if it is still open."""
        current = self.clients.get(client)
        if current is not None and self.clock() - current.start >= self.window:
            del self.clients[client]
            return None
        return current
