"""Personal API tokens: ``/api/tokens`` (JSON) and the ``/account/tokens`` page.

Tokens are managed from a signed-in browser session only: a request authenticated by a token
cannot create or revoke tokens (a leaked token cannot make itself permanent). The plain token is
returned once, at creation; afterwards only its prefix is shown.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field

from lutarterial.errors import AccessDeniedError, InvalidInputError
from lutarterial.web.backend import WebUser
from lutarterial.web.deps import backend_of, current_user, flash, require_csrf

__all__ = ["router", "pages"]

router = APIRouter(prefix="/api", tags=["tokens"])
pages = APIRouter(include_in_schema=False)
W = [Depends(require_csrf)]


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=60, description="a name you will recognise, e.g. nightly-labs")
    scope: Literal["read", "write"] = Field(description="read: GET only; write: also the writes your role allows")
    reason: str = Field(min_length=1, max_length=2000, description="why (recorded in the audit trail)")
    site: list[str] | None = Field(default=None, description="restrict to these of your sites (default: all yours)")
    expires_days: int | None = Field(default=None, ge=1, le=3650, description="days of validity (default: none)")


class RevokeIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000, description="why (recorded in the audit trail)")


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    username: str
    scope: str
    sites: list[str] | None
    created_at: str | None
    expires_at: str | None
    last_used_at: str | None
    revoked_at: str | None
    status: str


class NewTokenOut(TokenOut):
    token: str = Field(description="the token itself: shown this once, store it in a secret store")


def _owner(request: Request, user: WebUser) -> str:
    if getattr(request.state, "api_token", None) is not None:
        raise AccessDeniedError("API tokens are managed from a signed-in session, not with a token")
    return user.username


def _create(request: Request, user: WebUser, body: TokenIn) -> dict[str, Any]:
    from lutarterial.registry.tokens import create_token

    owner = _owner(request, user)
    with backend_of(request).write() as s:
        info, plain = create_token(s, user.actor, username=owner, name=body.name, scope=body.scope,
                                   reason=body.reason, sites=body.site, expires_days=body.expires_days)
        return {**info.to_dict(), "token": plain}


def _revoke(request: Request, user: WebUser, token_id: int, reason: str) -> dict[str, Any]:
    from lutarterial.registry.tokens import revoke_token

    _owner(request, user)
    with backend_of(request).write() as s:
        return revoke_token(s, user.actor, token_id=token_id, reason=reason).to_dict()


def _list(request: Request, user: WebUser) -> list[dict[str, Any]]:
    from lutarterial.registry.tokens import list_tokens

    with backend_of(request).read() as s:
        return [t.to_dict() for t in list_tokens(s, user.actor, username=_owner(request, user))]


@router.get("/tokens", response_model=list[TokenOut])
def api_list(request: Request, user: WebUser = Depends(current_user)) -> Any:
    """Your API tokens (never the secrets)."""
    return _list(request, user)


@router.post("/tokens", status_code=201, response_model=NewTokenOut, dependencies=W)
def api_create(request: Request, body: TokenIn, user: WebUser = Depends(current_user)) -> Any:
    """Create a token for yourself; the answer holds the token, shown this once."""
    return _create(request, user, body)


@router.post("/tokens/{token_id}/revoke", response_model=TokenOut, dependencies=W)
def api_revoke(request: Request, token_id: int, body: RevokeIn, user: WebUser = Depends(current_user)) -> Any:
    """Revoke one of your tokens (it stops working within 2 seconds)."""
    return _revoke(request, user, token_id, body.reason)


@pages.get("/account/tokens")
def tokens_page(request: Request, user: WebUser = Depends(current_user)) -> Response:
    return _tokens_page(request, user)


def _tokens_page(request: Request, user: WebUser, **kept: Any) -> Response:
    new = request.scope.get("session", {}).pop("new_token", None)
    ctx = {"tokens": _list(request, user), "new_token": new, "title": "API tokens", "active": "tokens",
           "sites": list(user.sites), **kept}
    return request.app.state.templates.TemplateResponse(request, "account_tokens.html",
                                                        request.app.state.page_context(request, ctx))


def _refused(request: Request, user: WebUser, form: str, values: dict[str, str], message: str) -> Response:
    """The tokens page again with the refused form's typed values and the message (issue 13)."""
    from lutarterial.web.forms import kept

    resp = _tokens_page(request, user, **kept(form, values, message))
    resp.status_code = 400
    return resp


@pages.post("/account/tokens", dependencies=W)
async def tokens_create(request: Request, user: WebUser = Depends(current_user)) -> Response:
    form = await request.form()
    f = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        days = int(f["expires_days"]) if f.get("expires_days") else None
        body = TokenIn(name=f.get("name", ""), scope=f.get("scope", "read"), reason=f.get("reason", ""),  # type: ignore[arg-type]
                       site=[f["site"]] if f.get("site") else None, expires_days=days)
        out = _create(request, user, body)
    except (InvalidInputError, ValueError) as exc:
        return _refused(request, user, "token", f, f"Not created: {exc}")
    request.scope["session"]["new_token"] = {"name": out["name"], "token": out["token"]}
    flash(request, "ok", f"Token {out['name']!r} created. Copy it now: it is shown only once.")
    return RedirectResponse("/account/tokens", status_code=303)


@pages.post("/account/tokens/{token_id}/revoke", dependencies=W)
async def tokens_revoke(request: Request, token_id: int, user: WebUser = Depends(current_user)) -> Response:
    form = await request.form()
    reason = form.get("reason")
    try:
        out = _revoke(request, user, token_id, reason if isinstance(reason, str) else "")
    except InvalidInputError as exc:
        values = {"reason": reason} if isinstance(reason, str) else {}
        return _refused(request, user, f"revoke-{token_id}", values, f"Not revoked: {exc}")
    flash(request, "ok", f"Token {out['name']!r} revoked.")
    return RedirectResponse("/account/tokens", status_code=303)
