"""A deadline for request headers, which uvicorn does not have.

uvicorn closes idle keep-alive connections (`timeout_keep_alive`) but waits forever
for the headers of a request that has begun: a client sending one header line a
minute ("slowloris") holds its connection, and enough of them hold them all.
`SlowClientProtocol` is uvicorn's httptools protocol plus a timer: from the first
byte of a request (or the connection's opening) its headers must be complete within
`header_timeout_s`, else the connection is closed. The body has its own deadline in
`rekollect.server.app`.

uvicorn takes the class by import path (`PROTOCOL`), which also works in
`serve --workers N` processes; they read the timeout from the environment.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from rekollect.security.limits import Limits

logger = logging.getLogger(__name__)

PROTOCOL = "rekollect.security.timeouts:SlowClientProtocol"


class SlowClientProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol with a deadline for each request's headers."""

    header_timeout_s: float = Limits.from_environment().header_timeout_s

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def _arm(self) -> None:
        self._header_timer = self.loop.call_later(
            self.header_timeout_s, self._headers_too_slow
        )

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            logger.info(
                "Closed a connection from %s: no complete request headers within %gs",
                self.client,
                self.header_timeout_s,
            )
            self.transport.close()
