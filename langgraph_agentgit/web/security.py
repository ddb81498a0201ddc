"""What keeps ``agentgit serve`` safe to leave running: the access token, the Host check
(against DNS rebinding), the CSRF token on changes, and the headers every response
carries (a Content-Security-Policy that allows no inline script or style)."""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from starlette.datastructures import URL
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp

#: The cookie that carries the access token once a browser has shown it.
TOKEN_COOKIE = "agentgit_token"
#: The form field (or ``X-CSRF-Token`` header) a state-changing request must carry.
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"

#: No inline script or style, nothing from elsewhere: the pages' script and stylesheet
#: are files served by the viewer itself.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # The access token may be in a URL: never send it to another site.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``)."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _with_port(name: str, port: int) -> list[str]:
    shown = f"[{name}]" if ":" in name and not name.startswith("[") else name
    return [shown.lower(), f"{shown.lower()}:{port}"]


def allowed_hosts(host: str, port: int) -> set[str] | None:
    """The ``Host`` header values the viewer answers to, bound to ``host``:``port``:
    that host and the loopback names, with and without the port. ``None`` (any) for a
    wildcard address (``0.0.0.0``, ``::``), which a token protects instead."""
    if host in ("0.0.0.0", "::", ""):
        return None
    names: list[str] = []
    for name in (host, *LOOPBACK_NAMES):
        names.extend(_with_port(name, port))
    return set(names)


@dataclass
class Guard:
    """The viewer's secrets and rules.

    Attributes:
        hosts: allowed ``Host`` headers (``None``: any; see :func:`allowed_hosts`).
        token: the access token every request must carry (``None`` on loopback without
            ``--token``).
        csrf: the CSRF token put into every form; a POST without it is refused (403).
    """

    hosts: set[str] | None
    token: str | None
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def host_ok(self, header: str | None) -> bool:
        return self.hosts is None or (header or "").lower() in self.hosts

    def token_ok(self, given: str | None) -> bool:
        if self.token is None:
            return True
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def csrf_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.csrf.encode())


def _given_token(request: Request) -> tuple[str | None, bool]:
    """The access token a request carries, and whether it came in the query string."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip(), False
    if "token" in request.query_params:
        return request.query_params["token"], True
    return request.cookies.get(TOKEN_COOKIE), False


def _without(url: URL, names: Iterable[str]) -> str:
    """The request's own path and query, less ``names``: always one leading ``/``, so
    that a path like ``//evil.example`` is not a redirect to another site."""
    rest = url.remove_query_params(list(names))
    path = "/" + rest.path.lstrip("/\\")
    return path + (f"?{rest.query}" if rest.query else "")


class SecurityMiddleware(BaseHTTPMiddleware):
    """Checks the Host header and the access token on every request, refuses a
    cross-site POST (its ``Origin`` is not this viewer), and adds
    :data:`SECURITY_HEADERS` to every response. The CSRF token itself is checked by
    each form handler, which reads the form."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        super().__init__(app)
        self.guard = guard

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await self._checked(request, call_next)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    async def _checked(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        guard = self.guard
        if not guard.host_ok(request.headers.get("host")):
            return PlainTextResponse(
                "unexpected Host header: this viewer answers only to the address it "
                "listens on (a guard against DNS rebinding)",
                status_code=400,
            )
        given, in_query = _given_token(request)
        if not guard.token_ok(given):
            return PlainTextResponse(
                "an access token is required: open the URL `agentgit serve` printed "
                "(…/?token=…), or send Authorization: Bearer TOKEN",
                status_code=401,
            )
        if in_query and guard.token is not None and request.method == "GET":
            # The token moves into a cookie and out of the address bar and history.
            response = RedirectResponse(_without(request.url, ["token"]), status_code=303)
            response.set_cookie(
                TOKEN_COOKIE, guard.token, httponly=True, samesite="strict", path="/"
            )
            return response
        if request.method not in ("GET", "HEAD"):
            origin = request.headers.get("origin")
            if origin is not None and origin != "null":
                host = origin.split("://", 1)[-1].lower()
                if host != (request.headers.get("host") or "").lower():
                    return PlainTextResponse("cross-site request refused", status_code=403)
        return await call_next(request)
