"""Backing off a background loop while its store is down, and saying so once.

The webhook and recovery loops poll every fraction of a second; with Redis down each poll fails
at once, so without this they would log several warnings a second. ``Outage`` doubles the wait
after each consecutive failure (capped), logs one warning when an outage starts and one line when
it ends, with how many polls failed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any


class Outage:
    def __init__(
        self,
        log: Any,
        loop: str,
        *,
        base_s: float = 0.5,
        cap_s: float = 30.0,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.log, self.loop, self.base_s, self.cap_s, self.jitter = log, loop, base_s, cap_s, jitter
        self.failures = 0
        self._since = 0.0

    def failed(self, exc: BaseException) -> float:
        """Record a failed poll; the seconds to wait before the next one."""
        self.failures += 1
        if self.failures == 1:
            self._since = time.monotonic()
            self.log.warning("store_unavailable_backing_off", loop=self.loop, error=repr(exc)[:200],
                             retry_cap_s=self.cap_s)
        delay = min(self.cap_s, self.base_s * 2.0 ** min(self.failures - 1, 30))
        return delay / 2 + self.jitter() * delay / 2  # equal jitter: processes do not retry in step

    def succeeded(self) -> None:
        """Record a good poll; logs the end of an outage."""
        if self.failures:
            self.log.info("store_available_again", loop=self.loop, failed_polls=self.failures,
                          outage_s=round(time.monotonic() - self._since, 1))
            self.failures = 0
