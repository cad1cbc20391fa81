"""Secret material never reaches a log, a metric, an audit row or an error body: markers
planted through every path, errors included, on a real server logging at DEBUG."""

from __future__ import annotations

import base64
import re
import signal
from urllib.parse import quote

import aiohttp
import asyncpg

from app.core.accounts import add_customer
from app.core.context import Services
from app.keys import SERVICES
from tests.factories import Client
from tests.processes import BOUND, start_server, wait_ready
from tests.reliability.figures import publish

VALUE, PASSPHRASE, WRONG = "MARK-VALUE-11aa", "MARK-PASS-22bb-long", "MARK-WRONG-33cc"


async def _walk(session: aiohttp.ClientSession, base: str, token: str) -> tuple[list[str], str]:
    """Every path a marker could travel; returns the keys handed out and all error bodies."""
    api, keys, bodies = f"{base}/api/v2", [], []

    async def post(url: str, **kwargs: object) -> dict[str, object]:
        async with session.post(url, **kwargs) as response:  # type: ignore[arg-type]
            text = await response.text()
            if response.status >= 400:
                bodies.append(text)
            return await response.json(content_type=None) if text.startswith("{") else {}

    created = await post(
        f"{api}/secret/conceal", json={"secret": {"secret": VALUE, "passphrase": PASSPHRASE}}
    )
    record = created["record"]
    assert isinstance(record, dict)
    share, receipt = record["secret"]["key"], record["metadata"]["key"]
    keys += [share, receipt]
    await post(f"{api}/secret/{share}/reveal", json={"continue": True, "passphrase": WRONG})
    await post(f"{api}/private/{receipt}/burn", json={"continue": True, "passphrase": WRONG})
    await post(f"{api}/secret/{share}/reveal", json={"continue": True, "passphrase": PASSPHRASE})
    await post(f"{api}/secret/{share}/reveal", json={"continue": True})  # gone: 404
    await post(
        f"{api}/secret/conceal",
        data=f'{{"secret": {{"secret": "{VALUE}"',
        headers={"Content-Type": "application/json"},
    )  # broken JSON
    await post(
        f"{api}/secret/conceal",
        data=VALUE.encode() + b"\xff",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    await post(f"{api}/secret/conceal", json={"secret": {"secret": VALUE * 2000}})  # too big
    await post(f"{api}/secret/conceal", json={"secret": {"secret": VALUE, "passphrase": "short"}})
    bad_auth = base64.b64encode(f"{token}:{VALUE}".encode()).decode()
    await post(
        f"{api}/secret/conceal",
        json={"secret": {"secret": VALUE}},
        headers={"Authorization": f"Basic {bad_auth}"},
    )
    v1 = await post(f"{base}/api/v1/share", data={"secret": VALUE, "passphrase": PASSPHRASE})
    keys += [str(v1["secret_key"]), str(v1["metadata_key"])]
    await post(f"{base}/api/v1/secret/{v1['secret_key']}", data={"passphrase": WRONG})
    await post(f"{base}/api/v1/secret/{v1['secret_key']}", data={"passphrase": PASSPHRASE})
    async with session.get(f"{base}/secret/{v1['secret_key']}") as response:
        await response.text()
    async with session.get(f"{base}/metrics") as response:
        bodies.append(await response.text())
    return keys, "\n".join(bodies)


async def test_markers_reach_no_log_metric_audit_row_or_error_body(
    client: Client, db: asyncpg.Connection, database_url: str
) -> None:
    svc: Services = client.app[SERVICES]
    token = await add_customer(svc, "marks@example.com", "basic")
    base, proc = start_server(database_url, OTS_LOG_LEVEL="DEBUG", OTS_LOG_FORMAT="json")
    try:
        await wait_ready(base)
        async with aiohttp.ClientSession() as session:
            keys, bodies = await _walk(session, base, token)
    finally:
        proc.send_signal(signal.SIGTERM)
        logs, _ = proc.communicate(timeout=BOUND)
    # A 404 echoes the key the caller itself sent, as `secret_key` (upstream's contract, which
    # clients match on); the key was in that request's path anyway, and it opens nothing now.
    for key in keys:
        bodies = re.sub(rf'"secret_key":\s*"{re.escape(key)}"', '"secret_key":"<echo>"', bodies)
    audit = await db.fetchval("SELECT string_agg(audit_events::text, E'\\n') FROM audit_events")
    assert "secret.revealed" in audit  # the walk did reach the trail
    assert len(logs.splitlines()) > 15  # ...and the log
    planted = [VALUE, PASSPHRASE, WRONG, token, *keys]
    markers = [form for marker in planted for form in _forms(marker)]
    places = {"log": logs, "audit": audit, "bodies and metrics": bodies}
    publish(
        "never_logged",
        markers=len(markers),
        log_lines=len(logs.splitlines()),
        hits=sum(marker in text for marker in markers for text in places.values()),
    )
    for marker in markers:
        for place, text in places.items():
            assert marker not in text, f"{marker[:12]}... in {place}"


def _forms(marker: str) -> list[str]:
    """The marker as written, and as base64, hex and URL-encoded (a leak may be encoded)."""
    raw = marker.encode()
    encoded = [base64.b64encode(raw).decode()[:-4], raw.hex(), quote(marker, safe="")]
    return [marker, *{form for form in encoded if form != marker}]
