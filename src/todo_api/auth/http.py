"""Authentication at the HTTP edge: the bearer header, the scope a method needs, and the
middleware that applies both to every `/api` request before anything else runs."""

from __future__ import annotations

from fastapi import Request
from fastapi.security import HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from todo_api.auth.principal import PRINCIPAL_KEY, Principal, required_scope
from todo_api.context import app_context
from todo_api.errors import AppError, InsufficientScope, NotAuthenticated, TooManyRequests
from todo_api.http.errors import app_error_response

# The scheme as OpenAPI declares it (the "Authorize" button), on every `/api` operation
# (`http.openapi`). Never called: the header is parsed and the token verified by
# `AuthenticationMiddleware` before routing.
bearer_scheme = HTTPBearer(auto_error=False, scheme_name="HTTPBearer", description="A JWT from your identity provider.")


def bearer_token(request: Request) -> str:
    values = request.headers.getlist("authorization")
    if len(values) != 1:
        raise NotAuthenticated
    # Only HTTP whitespace (SP, HTAB) around the credentials: `str.strip()` would also drop
    # Unicode whitespace such as U+0085 or U+00A0 (bytes 0x85, 0xA0 decoded as Latin-1).
    scheme, _, token = values[0].strip(" \t").partition(" ")
    token = token.strip(" \t")
    if scheme.lower() != "bearer" or not token:
        raise NotAuthenticated
    return token


async def authenticate(request: Request) -> Principal:
    """Verify the bearer token and the scope the method needs; remember the result per request."""
    state = request.scope.setdefault("state", {})
    principal = state.get(PRINCIPAL_KEY)
    if isinstance(principal, Principal):
        return principal
    verifier = app_context(request).verifier
    principal = await verifier.verify(bearer_token(request))
    scope = required_scope(request.method)
    if not principal.allows(scope, require_scopes=verifier.require_scopes):
        raise InsufficientScope(scope)
    state[PRINCIPAL_KEY] = principal
    return principal


class AuthenticationMiddleware:
    """Authenticates every request under `/api` before routing and body parsing.

    An anonymous request to any `/api` path gets 401 (not 404, not 422 for a malformed body),
    so routes cannot be enumerated and bodies are never parsed for strangers. Then the per-user
    rate limit (429). The router-level dependency calls `authenticate()` again and gets the
    remembered principal.
    """

    def __init__(self, app: ASGIApp, prefix: str = "/api") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] == "http" and (path == self.prefix or path.startswith(self.prefix + "/")):
            request = Request(scope, receive)
            try:
                principal = await authenticate(request)
                verdict = app_context(request).rate_limiter.hit(principal)
                if not verdict.allowed:
                    raise TooManyRequests(verdict.retry_after)
            except AppError as exc:
                await app_error_response(request, exc)(scope, receive, send)
                return
        await self.app(scope, receive, send)
