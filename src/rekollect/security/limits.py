"""Limits that keep one client from starving the others.

* `RateLimiter`: a token bucket per access key (one shared bucket for unsigned
  requests). A request finding its bucket empty is answered
  `ProvisionedThroughputExceededException`, which boto3 and the aws CLI retry with
  back-off. Off by default; each server process keeps its own buckets.
* `JobSlots`: how many image requests a server process takes at once. Requests
  beyond it are answered `ThrottlingException` (retried by clients) at once, instead
  of queueing in memory, each holding up to 5 MiB of image, behind a busy engine.
* `check_nesting`: JSON nested deeper than `MAX_JSON_DEPTH` is refused before it is
  parsed. No Rekognition request nests deeper than 6 levels.
* `Limits`: these settings plus the transport's (slow clients, connections), as
  `serve` options and `REKOLLECT_*` variables for worker processes.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields

from rekollect.errors import (
    ProvisionedThroughputExceededException,
    RekollectError,
    SerializationException,
    ThrottlingException,
)

MAX_JSON_DEPTH = 32
# Buckets not used for this long are forgotten (they would be full again anyway).
_IDLE_BUCKET_S = 600.0
_ENV_PREFIX = "REKOLLECT_LIMIT_"
# A JSON string (escapes included) or one bracket: what nesting depends on.
_JSON_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


@dataclass(frozen=True)
class Limits:
    """The server's limits; 0 turns a rate or a count limit off (or to its default)."""

    # Requests per second per access key, and the burst a full bucket allows (0:
    # twice the rate, at least 1).
    rate_per_key: float = 0.0
    rate_burst: int = 0
    # Image requests in progress per server process (0: 4 per engine worker).
    image_jobs: int = 0
    # Slow clients: request headers and body must arrive within these times; an idle
    # keep-alive connection is closed after `keep_alive_s`.
    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    keep_alive_s: int = 5
    # Connections (and requests in progress) per process before plain 503 answers.
    max_connections: int = 1000

    def environment(self) -> dict[str, str]:
        return {f"{_ENV_PREFIX}{k.upper()}": str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_environment(cls) -> Limits:
        values: dict[str, float | int] = {}
        for item in fields(cls):
            text = os.environ.get(f"{_ENV_PREFIX}{item.name.upper()}")
            if text is not None:
                kind = float if item.type == "float" else int
                try:
                    values[item.name] = kind(text)
                except ValueError:
                    raise RekollectError(
                        f"{_ENV_PREFIX}{item.name.upper()} must be a number."
                    ) from None
        return cls(**values)  # type: ignore[arg-type]


class RateLimiter:
    """A token bucket per key: `rate` tokens a second, at most `burst` saved up."""

    def __init__(
        self,
        rate: float,
        burst: int = 0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = float(burst or max(1, round(2 * rate)))
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}
        self._swept_at = clock()

    def take(self, key: str) -> None:
        """Spend one token of `key`'s bucket or raise the AWS throughput error."""
        now = self._clock()
        with self._lock:
            tokens, since = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - since) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                raise ProvisionedThroughputExceededException(
                    f"Provisioned Rate exceeded: at most {self.rate:g} requests per "
                    "second per access key."
                )
            self._buckets[key] = (tokens - 1.0, now)
            if now - self._swept_at > _IDLE_BUCKET_S:
                self._sweep(now)

    def _sweep(self, now: float) -> None:
        self._buckets = {
            key: value
            for key, value in self._buckets.items()
            if now - value[1] < _IDLE_BUCKET_S
        }
        self._swept_at = now


class JobSlots:
    """At most `size` image requests at once; the next one is refused, not queued."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._free = threading.BoundedSemaphore(size)

    def __enter__(self) -> None:
        if not self._free.acquire(blocking=False):
            raise ThrottlingException(
                f"The server is analysing {self.size} images already; retry shortly."
            )

    def __exit__(self, *exc_info: object) -> None:
        self._free.release()


def check_nesting(body: bytes, limit: int = MAX_JSON_DEPTH) -> None:
    """Refuse JSON whose arrays and objects nest deeper than `limit`."""
    depth = 0
    for token in _JSON_TOKEN.finditer(body):
        char = token.group()[:1]
        if char in (b"[", b"{"):
            depth += 1
            if depth > limit:
                raise SerializationException(
                    f"The request body nests JSON deeper than {limit} levels."
                )
        elif char in (b"]", b"}"):
            depth -= 1
