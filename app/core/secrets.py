"""Creating, showing and revealing secrets."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from app import crypto, metrics
from app.core import notify, rules
from app.core.audit import caused_by
from app.core.context import Caller, Services
from app.core.errors import InvalidRequest, UnknownSecret
from app.core.limits import count_of, judge, throttle
from app.core.passwords import CharacterSets, generate_password
from app.core.unlock import open_live
from app.store import secrets as store
from app.store.secrets import LiveSecret, NewSecret


@dataclass(frozen=True)
class ConcealRequest:
    secret: str
    ttl: int | None = None
    passphrase: str = ""
    recipients: tuple[str, ...] = ()
    share_domain: str | None = None


@dataclass(frozen=True)
class GenerateRequest:
    length: int | None = None
    character_sets: CharacterSets | None = None
    ttl: int | None = None
    passphrase: str = ""
    recipients: tuple[str, ...] = ()
    share_domain: str | None = None
    # v1 returns the generated value in the create response; then the receipt never does.
    shown_at_creation: bool = False


@dataclass(frozen=True)
class Created:
    kind: str
    custid: str
    share_key: str
    receipt_key: str
    ttl: int
    has_passphrase: bool
    created: datetime
    share_domain: str | None
    recipient: str | None  # the address as given (for the creator's response only)
    value: str | None  # the generated password; None for conceal

    @property
    def receipt_ttl(self) -> int:
        return 2 * self.ttl


@dataclass(frozen=True)
class Revealed:
    secret: LiveSecret
    key: str
    value: str | None  # None when the caller did not confirm with `continue`


@dataclass(frozen=True)
class _Draft:
    """A create that passed every rule: what _create seals and stores."""

    kind: str
    value: str
    passphrase: str
    ttl: int
    recipient: str | None
    share_domain: str | None
    value_claimable: bool = False  # the receipt may show the value once, shortly after


async def conceal(svc: Services, caller: Caller, req: ConcealRequest) -> Created:
    draft = await _checked(svc, caller, "conceal", req.secret, req)
    if not req.secret:
        raise InvalidRequest("You did not provide anything to share")
    rules.check_size(svc.plan(caller.plan), req.secret)
    return await _create(svc, caller, draft)


async def generate(svc: Services, caller: Caller, req: GenerateRequest) -> Created:
    sets = req.character_sets or CharacterSets(symbols=svc.limits.generate_symbols)
    length = rules.check_length(svc.limits, req.length, sets)
    value = generate_password(length, sets)
    draft = await _checked(svc, caller, "generate", value, req)
    later = not (req.passphrase or req.shown_at_creation)
    return await _create(svc, caller, replace(draft, value_claimable=later))


async def _checked(
    svc: Services, caller: Caller, kind: str, value: str, req: ConcealRequest | GenerateRequest
) -> _Draft:
    """The rules every create follows, in upstream's order."""
    await throttle(svc, caller, "create_secret")
    recipient = rules.check_recipients(caller, req.recipients)
    if recipient:
        await throttle(svc, caller, "email_recipient")
    domain = rules.check_share_domain(svc.site_host, svc.share_domains, req.share_domain)
    rules.check_passphrase(svc.limits, req.passphrase)
    ttl = rules.clamp_ttl(svc.limits, svc.plan(caller.plan), req.ttl)
    return _Draft(kind, value, req.passphrase, ttl, recipient, domain)


async def _create(svc: Services, caller: Caller, draft: _Draft) -> Created:
    share_key, receipt_key = crypto.new_link_key(), crypto.new_link_key()
    salt = crypto.new_salt() if draft.passphrase else None
    pass_key = await svc.hasher.derive(draft.passphrase, salt) if salt else b""
    key_id = svc.keys.active_id
    master = svc.keys.master(key_id)
    plaintext = draft.value.encode()
    new = NewSecret(
        secret_id=crypto.lookup_id(svc.keys, share_key),
        receipt_id=crypto.lookup_id(svc.keys, receipt_key),
        key_id=key_id,
        ciphertext=crypto.seal_secret(master, share_key, pass_key, plaintext),
        passphrase_salt=salt,
        value_bytes=len(plaintext),
        share_key_sealed=crypto.seal_for_receipt(master, receipt_key, share_key.encode()),
        receipt_key_sealed=None
        if caller.anonymous
        else crypto.seal_for_owner(master, receipt_key.encode()),
        secret_shortkey=share_key[:6],
        custid=caller.custid,
        kind=draft.kind,
        ttl=draft.ttl,
        value_claimable=draft.value_claimable,
        share_domain=draft.share_domain,
        recipients=rules.obscure_email(draft.recipient) if draft.recipient else None,
    )
    event = caused_by(caller, "secret.created", receipt_ref=new.receipt_id, detail=draft.kind)
    mail = notify.recipient_mail(svc, new, share_key, draft.recipient) if draft.recipient else None
    created = await store.insert_pair(svc.writes.bound(event), new, mail)
    metrics.child(metrics.SECRETS_CREATED, draft.kind).inc()
    return Created(
        kind=draft.kind,
        custid=caller.custid,
        share_key=share_key,
        receipt_key=receipt_key,
        ttl=draft.ttl,
        has_passphrase=salt is not None,
        created=created,
        share_domain=draft.share_domain,
        recipient=draft.recipient,
        value=draft.value if draft.kind == "generate" else None,
    )


async def show_secret(svc: Services, caller: Caller, key: str) -> LiveSecret:
    """A live secret's metadata; changes nothing, so link scanners cannot burn it."""
    live = await _peek(svc, caller, key)
    await svc.writes.record(caused_by(caller, "secret.viewed", receipt_ref=live.receipt_id))
    return live


async def reveal(
    svc: Services, caller: Caller, key: str, passphrase: str, confirmed: bool
) -> Revealed:
    """Consume-once: exactly one caller ever gets the value.

    The passphrase is checked first (it is checked even without confirmation, as
    upstream does); then one statement locks the row, deletes it, closes the receipt
    and records it, and it commits before the value is returned.
    """
    live = await _peek(svc, caller, key)
    plaintext = await open_live(svc, caller, live, key, passphrase, "Incorrect passphrase")
    if not confirmed:
        return Revealed(live, key, None)
    event = caused_by(caller, "secret.revealed", receipt_ref=live.receipt_id)
    consumed = await store.consume_secret(svc.writes.bound(event), live.id, "received")
    if not consumed:
        raise UnknownSecret(key)
    metrics.SECRETS_REVEALED.inc()
    return Revealed(live, key, plaintext.decode())


async def _peek(svc: Services, caller: Caller, key: str) -> LiveSecret:
    """The live secret behind `key`, the request counted against the caller's
    show_secret limit in the same round trip (and in a batch, under load)."""
    count = count_of(svc, caller, "show_secret")
    if not crypto.is_link_key(key):
        await throttle(svc, caller, "show_secret")
        raise UnknownSecret(key)
    secret_id = crypto.lookup_id(svc.keys, key)
    if count is None:
        async with svc.store.connection() as db:
            live = await store.peek_secret(db, secret_id)
    else:
        hit, live = await svc.counts.peek(secret_id, count)
        await judge(svc, caller, count, hit)
    if live is None:
        raise UnknownSecret(key)
    return live
