"""The console's HTTP plumbing: its shared state, the session of a request, pages
rendered from templates, messages carried to the next page, and POSTed forms, read
only once their CSRF token and origin check out."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import jinja2
from anyio import to_thread
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from rekollect.console.session import COOKIE, LIFETIME_S, Session, Sessions
from rekollect.security.access import AccessControl
from rekollect.security.limits import JobSlots
from rekollect.service import Service

STATIC = Path(__file__).parent / "static"
FLASH_COOKIE = "rekollect_console_flash"
# Forms of selected face ids stay far below this; uploads of photos get more.
MAX_FORM_BYTES = 1 << 20
MAX_UPLOAD_BYTES = 60 << 20
MAX_UPLOAD_FILES = 50
_MESSAGE_CHARS = 600

T = TypeVar("T")


@dataclass(frozen=True)
class Message:
    kind: str  # "ok" or "error"
    text: str


@dataclass
class Console:
    """What every console request shares."""

    service: Service
    access: AccessControl | None
    sessions: Sessions
    image_slots: JobSlots | None
    templates: jinja2.Environment
    static_version: str


class FormRefused(Exception):
    """A POST that is not processed: a bad CSRF token, origin or size."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("rekollect.console", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def static_version() -> str:
    """A digest of the static files, appended to their URLs to bust caches."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:10]


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def base_of(request: Request) -> str:
    """Where the console is mounted, e.g. `/console`."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def session_of(request: Request) -> Session:
    session: Session | None = getattr(request.state, "session", None)
    if session is None:
        session = console_of(request).sessions.read(request.cookies.get(COOKIE))
        request.state.session = session
    return session


async def in_thread(function: Callable[[], T]) -> T:
    """Run blocking work (the store, the engine) off the event loop."""
    return await to_thread.run_sync(function)


def render(
    request: Request, template: str, *, status: int = 200, **context: Any
) -> HTMLResponse:
    console = console_of(request)
    session = session_of(request)
    base = base_of(request)
    messages = _take_messages(request)
    html = console.templates.get_template(template).render(
        session=session,
        base=base,
        messages=messages,
        open_console=session.signed_in and session.key is None,
        static=lambda name: f"{base}/static/{name}?v={console.static_version}",
        query=lambda **changes: _query(request, changes),
        **context,
    )
    response = HTMLResponse(html, status, headers={"cache-control": "no-store"})
    keep_session(request, response, session)
    if messages:
        response.delete_cookie(FLASH_COOKIE, path=base or "/")
    return response


def redirect(
    request: Request,
    path: str,
    messages: Iterable[Message] = (),
    session: Session | None = None,
) -> RedirectResponse:
    """See Other to `path` (below the console), carrying `messages` to that page."""
    session = session or session_of(request)
    base = base_of(request)
    response = RedirectResponse(f"{base}{path}", status_code=303)
    keep_session(request, response, session)
    shown = [[m.kind, m.text[:_MESSAGE_CHARS]] for m in messages]
    if shown:
        sealed = console_of(request).sessions.seal(session, json.dumps(shown))
        _set_cookie(request, response, FLASH_COOKIE, sealed, max_age=300)
    return response


def keep_session(request: Request, response: Response, session: Session) -> None:
    """Set the session cookie unless the request already carried this session."""
    value = console_of(request).sessions.cookie(session)
    if request.cookies.get(COOKIE) != value:
        _set_cookie(request, response, COOKIE, value, max_age=LIFETIME_S)


async def posted_form(request: Request, *, uploads: bool = False) -> FormData:
    """The POSTed form, once it passes the size, origin and CSRF checks."""
    limit = MAX_UPLOAD_BYTES if uploads else MAX_FORM_BYTES
    declared = request.headers.get("content-length", "")
    if not declared.isdigit():
        raise FormRefused(411, "The request must say how long its body is.")
    if int(declared) > limit:
        raise FormRefused(
            413, f"The request of {int(declared):,} bytes exceeds {limit:,} bytes."
        )
    origin = request.headers.get("origin")
    if origin and origin != "null" and _host_of(origin) != request.headers.get("host"):
        raise FormRefused(403, "The form was sent from another site.")

    form = await request.form(max_files=MAX_UPLOAD_FILES if uploads else 0)
    token = form.get("csrf")
    session = session_of(request)
    if not isinstance(token, str) or not console_of(request).sessions.csrf_matches(
        session, token
    ):
        await form.close()
        raise FormRefused(
            403,
            "The form's security token did not match your session (it may have "
            "expired); reload the page and try again.",
        )
    return form


def texts(form: FormData, name: str) -> list[str]:
    """Every non-empty text value of field `name`."""
    return [v.strip() for v in form.getlist(name) if isinstance(v, str) and v.strip()]


def text(form: FormData, name: str) -> str:
    found = texts(form, name)
    return found[0] if found else ""


def _take_messages(request: Request) -> list[Message]:
    sealed = request.cookies.get(FLASH_COOKIE)
    if not sealed:
        return []
    unsealed = console_of(request).sessions.unseal(session_of(request), sealed)
    try:
        pairs = json.loads(unsealed) if unsealed else []
        return [Message(str(kind), str(text)) for kind, text in pairs]
    except (ValueError, TypeError):
        return []


def _set_cookie(
    request: Request, response: Response, name: str, value: str, *, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=base_of(request) or "/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


def _query(request: Request, changes: dict[str, Any]) -> str:
    """This page's query string with `changes` (None removes a parameter)."""
    params = dict(request.query_params)
    for name, value in changes.items():
        if value is None or value == "":
            params.pop(name, None)
        else:
            params[name] = str(value)
    return "?" + urlencode(params) if params else ""


def _host_of(origin: str) -> str:
    return origin.partition("://")[2].rstrip("/")
