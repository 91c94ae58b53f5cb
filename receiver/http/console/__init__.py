"""The web console at ``/ui/``: approvals, incidents, audit search and admin, server-rendered.

Registered by ``receiver.http.app.create_app`` (unless ``console.enabled`` is false).
Pages are Jinja2 templates (``templates/``, autoescaped) rendered through aiohttp-jinja2,
one stylesheet (``static/console.css``), no JavaScript. Sign-in, sessions, CSRF and the
origin check are ``receiver.http.console.session``; the pages ``receiver.http.console.pages``
(approvals, incidents, audit) and ``receiver.http.console.admin`` (pause, circuits,
rules). Roles are the API's: ``approver`` sees and decides approvals, incidents and the
audit; ``admin`` also the admin page; ``webhook`` has no console.
"""

from __future__ import annotations

import base64
from importlib.resources import files

import aiohttp_jinja2
import jinja2
from aiohttp import web

from receiver.http.console.admin import add_admin_routes
from receiver.http.console.pages import SESSIONS, add_page_routes, page, refused
from receiver.http.console.session import Refused, Sessions
from receiver.http.keys import RUNTIME
from receiver.http.middlewares import AUTHENTICATOR

_CSS = web.AppKey("console_css", bytes)


async def _login_page(request: web.Request, status: int, **context: str) -> web.Response:
    auth = request.app[AUTHENTICATOR]
    return await page(request, "login.html", None, status=status, anonymous=not auth.enabled,
                      token_auth=auth.takes_tokens, basic_auth=auth.takes_basic, **context)


async def login_form(request: web.Request) -> web.StreamResponse:
    """``GET /ui/login``."""
    if request.app[SESSIONS].read(request) is not None:
        raise web.HTTPSeeOther("/ui/approvals")
    return await _login_page(request, 200)


async def login(request: web.Request) -> web.StreamResponse:
    """``POST /ui/login``: a token, or a user and password, as the API takes them."""
    sessions = request.app[SESSIONS]
    auth = request.app[AUTHENTICATOR]
    try:
        sessions.check_origin(request)
    except Refused as exc:
        return await refused(request, exc)
    form = await request.post()
    token, user, password = (str(form.get(k) or "") for k in ("token", "username", "password"))
    if token:
        principal = auth.authenticate(f"Bearer {token}")
    elif user:
        pair = base64.b64encode(f"{user}:{password}".encode()).decode()
        principal = auth.authenticate(f"Basic {pair}")
    else:
        principal = auth.authenticate(None) if not auth.enabled else None
    if principal is None:
        return await _login_page(request, 401, message="Those credentials are not valid.",
                                 message_kind="error")
    if principal.role == "webhook":
        return await _login_page(request, 403, message_kind="error",
                                 message=f"{principal.name} has the webhook role, which has no console.")
    response = web.HTTPSeeOther("/ui/approvals")
    sessions.issue(response, request, principal)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    """``POST /ui/logout``."""
    try:
        await request.app[SESSIONS].guard_post(request, need="approver")
    except Refused as exc:
        if exc.status != 401:
            return await refused(request, exc)
    response = web.HTTPSeeOther("/ui/login")
    Sessions.clear(response)
    raise response


async def stylesheet(request: web.Request) -> web.Response:
    return web.Response(body=request.app[_CSS], content_type="text/css",
                        headers={"Cache-Control": "max-age=3600"})


async def home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/ui/approvals")


def add_console_routes(app: web.Application) -> None:
    """Every ``/ui/`` route, the template engine and the session keeper."""
    runtime = app[RUNTIME]
    aiohttp_jinja2.setup(app, loader=jinja2.PackageLoader("receiver.http.console", "templates"),
                         autoescape=jinja2.select_autoescape(default=True))
    app[SESSIONS] = Sessions(runtime.settings.console, authenticator=app[AUTHENTICATOR], clock=runtime.clock,
                             tls=runtime.settings.tls is not None)
    app[_CSS] = files("receiver.http.console").joinpath("static/console.css").read_bytes()
    app.router.add_get("/ui", home)
    app.router.add_get("/ui/", home)
    app.router.add_get("/ui/static/console.css", stylesheet)
    app.router.add_get("/ui/login", login_form)
    app.router.add_post("/ui/login", login)
    app.router.add_post("/ui/logout", logout)
    add_page_routes(app)
    add_admin_routes(app)
