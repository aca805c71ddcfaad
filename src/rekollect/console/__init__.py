"""The web console: see and fix collections in a browser, at `/console/`.

Server-rendered pages (Starlette and Jinja2, plain forms and a little JavaScript for
selection and drag-and-drop) served by `rekollect serve` itself, with every asset
local. Pages read through `rekollect.service.browse`; every change is an API
operation run for the signed-in access key, authorized by its policy as the API
would authorize it. See docs/console.md.
"""

from __future__ import annotations

from rekollect.console.app import create_console

__all__ = ["create_console"]
