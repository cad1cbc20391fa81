"""The pages: create (/), the recipient's page (/secret/KEY), the sender's receipt
(/receipt/KEY, /private/KEY). Plain forms and POST; a GET never consumes anything."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from aiohttp import web

from app.api.parsing import as_int, as_text, read_params
from app.config import body_limit
from app.core import receipts, secrets
from app.core.errors import InvalidRequest, LockedOut, UnknownSecret, WrongPassphrase
from app.http.callers import anonymous_caller
from app.keys import SERVICES, SETTINGS
from app.links import share_url
from app.web import csrf
from app.web.render import csrf_key, render

TTL_OPTIONS = (60, 300, 1800, 3600, 14400, 43200, 86400, 259200, 604800, 1209600, 2592000)
ANONYMOUS = "anonymous"


async def create_form(
    request: web.Request, error: str | None = None, status: int = 200
) -> web.Response:
    plan = request.config_dict[SERVICES].plan(ANONYMOUS)
    limits = request.config_dict[SETTINGS].limits
    return render(
        request,
        "create.html",
        status,
        error=error,
        ttl_options=[ttl for ttl in TTL_OPTIONS if ttl <= plan.ttl_max],
        ttl_default=min(limits.ttl_default, plan.ttl_max),
        max_chars=plan.max_secret_bytes,
    )


async def create(request: web.Request) -> web.StreamResponse:
    svc = request.config_dict[SERVICES]
    form = await _form(request, body_limit(svc.plan(ANONYMOUS).max_secret_bytes))
    if form is None:
        return await create_form(request, "error.csrf", 403)
    caller = anonymous_caller(request)
    ttl, passphrase = as_int(form.get("ttl")), as_text(form.get("passphrase"), "passphrase")
    try:
        if form.get("kind") == "generate":
            request_ = secrets.GenerateRequest(ttl=ttl, passphrase=passphrase)
            created = await secrets.generate(svc, caller, request_)
        else:
            secret = as_text(form.get("secret"), "secret")
            created = await secrets.conceal(
                svc, caller, secrets.ConcealRequest(secret=secret, ttl=ttl, passphrase=passphrase)
            )
    except InvalidRequest as exc:
        return await create_form(request, exc.message, 422)
    # Post/Redirect/Get: the receipt page is the result page, and a reload creates nothing.
    raise web.HTTPSeeOther(f"/receipt/{created.receipt_key}?created=1")


async def secret_page(request: web.Request) -> web.Response:
    """Shows that a secret is waiting; consumes nothing (link previews and scanners GET)."""
    key = request.match_info["key"]
    try:
        live = await secrets.show_secret(
            request.config_dict[SERVICES], anonymous_caller(request), key
        )
    except UnknownSecret:
        return render(request, "gone.html", 404)
    return render(
        request, "secret.html", key=key, has_passphrase=live.passphrase_salt is not None, error=None
    )


async def reveal(request: web.Request) -> web.Response:
    key = request.match_info["key"]
    form = await _form(request)
    svc = request.config_dict[SERVICES]
    try:
        if form is None:  # the page again, with the secret untouched
            live = await secrets.show_secret(svc, anonymous_caller(request), key)
            return _secret_error(request, key, live.passphrase_salt is not None, "error.csrf", 403)
        passphrase = as_text(form.get("passphrase"), "passphrase")
        revealed = await secrets.reveal(svc, anonymous_caller(request), key, passphrase, True)
    except UnknownSecret:
        return render(request, "gone.html", 404)
    except WrongPassphrase:
        return _secret_error(request, key, True, "error.passphrase", 422)
    except LockedOut:
        return _secret_error(request, key, True, "error.locked", 429)
    value = revealed.value or ""
    return render(
        request, "revealed.html", value=value, rows=min(max(value.count("\n") + 2, 3), 20)
    )


async def receipt_page(
    request: web.Request, error: str | None = None, status: int = 200
) -> web.Response:
    key = request.match_info["key"]
    try:
        view = await receipts.show_receipt(
            request.config_dict[SERVICES],
            anonymous_caller(request),
            key,
            claim_value=request.method == "GET" and "created" in request.query,
        )
    except UnknownSecret:
        return render(request, "gone.html", 404)
    base = request.config_dict[SETTINGS].base_url
    receipt = view.receipt
    return render(
        request,
        "receipt.html",
        status,
        key=key,
        fresh="created" in request.query and request.method == "GET",
        live=view.share_key is not None,
        share_url=share_url(base, receipt.share_domain, view.share_key) if view.share_key else None,
        receipt_url=f"{base}/receipt/{key}",
        value=view.value,
        state=receipt.state,
        created=receipt.created,
        received=receipt.received,
        burned=receipt.burned,
        expired=receipt.expired,
        expires=receipt.created + timedelta(seconds=receipt.secret_ttl),
        has_passphrase=receipt.has_passphrase,
        error=error,
    )


async def burn(request: web.Request) -> web.StreamResponse:
    key = request.match_info["key"]
    form = await _form(request)
    if form is None:
        return await receipt_page(request, "error.csrf", 403)
    if form.get("confirm") != "yes":
        return await receipt_page(request, "error.confirm", 422)
    passphrase = as_text(form.get("passphrase"), "passphrase")
    try:
        await receipts.burn(
            request.config_dict[SERVICES], anonymous_caller(request), key, passphrase, True
        )
    except UnknownSecret:
        return render(request, "gone.html", 404)
    except WrongPassphrase:
        return await receipt_page(request, "error.passphrase", 422)
    except LockedOut:
        return await receipt_page(request, "error.locked", 429)
    raise web.HTTPSeeOther(f"/receipt/{key}")


def _secret_error(
    request: web.Request, key: str, has_passphrase: bool, error: str, status: int
) -> web.Response:
    return render(
        request, "secret.html", status, key=key, has_passphrase=has_passphrase, error=error
    )


async def _form(request: web.Request, max_bytes: int = 64 * 1024) -> dict[str, object] | None:
    """The posted form, or None when its CSRF token does not match the cookie."""
    form = await read_params(request, max_bytes)
    if not csrf.valid(csrf_key(request), request, as_text(form.get(csrf.FIELD), csrf.FIELD)):
        return None
    return form


def setup(app: web.Application) -> None:
    app.router.add_get("/", create_form)
    app.router.add_post("/", create)
    app.router.add_get("/secret/{key}", secret_page)
    app.router.add_post("/secret/{key}", reveal)
    for prefix in ("/receipt", "/private"):
        app.router.add_get(prefix + "/{key}", receipt_page)
        app.router.add_post(prefix + "/{key}/burn", burn)
    app.router.add_static("/static", Path(__file__).parent / "static", append_version=False)
