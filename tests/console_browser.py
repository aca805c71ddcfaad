"""A scripted browser for the console's tests: an httpx client on the ASGI app (no
socket), keeping cookies as a browser does and reading forms' CSRF tokens from the
last page, driven from plain synchronous tests through an anyio portal."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal
from starlette.types import ASGIApp

ORIGIN = "http://127.0.0.1:9860"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_MESSAGE = re.compile(r'<p class="message (ok|error)"[^>]*>([^<]*)</p>')


class Browser:
    def __init__(self, app: ASGIApp, portal: BlockingPortal) -> None:
        self.portal = portal
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=ORIGIN
        )
        self.page = ""

    def get(self, path: str, **options: Any) -> httpx.Response:
        response = self.portal.call(lambda: self.client.get(path, **options))
        if response.headers.get("content-type", "").startswith("text/html"):
            self.page = response.text
        return response

    def post(
        self,
        path: str,
        data: dict[str, Any] | None = None,
        *,
        csrf: str | None = None,
        follow: bool = True,
        **options: Any,
    ) -> httpx.Response:
        """POST a form with the CSRF token of the last page (or `csrf`), following
        the redirect as a browser does."""
        fields = {"csrf": csrf if csrf is not None else self.csrf} | (data or {})
        response = self.portal.call(
            lambda: self.client.post(path, data=fields, **options)
        )
        if follow and response.status_code == 303:
            return self.get(response.headers["location"])
        if response.headers.get("content-type", "").startswith("text/html"):
            self.page = response.text
        return response

    @property
    def csrf(self) -> str:
        found = _CSRF.search(self.page)
        return found.group(1) if found else ""

    @property
    def messages(self) -> list[tuple[str, str]]:
        """The (kind, text) messages of the last page, HTML entities undone."""
        return [(kind, _unescape(text)) for kind, text in _MESSAGE.findall(self.page)]

    def close(self) -> None:
        self.portal.call(self.client.aclose)


@contextmanager
def browsers(app: ASGIApp) -> Iterator[Any]:
    """Makes browsers on `app`, closed when the block ends."""
    made: list[Browser] = []
    with start_blocking_portal() as portal:

        def make() -> Browser:
            made.append(Browser(app, portal))
            return made[-1]

        try:
            yield make
        finally:
            for browser in made:
                browser.close()


def _unescape(text: str) -> str:
    import html

    return html.unescape(text)
