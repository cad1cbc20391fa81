"""Link-preview safety: GET, HEAD and OPTIONS with bot user agents on every route leave the
secret revealable."""

from __future__ import annotations

from tests.factories import V2, Client, conceal, reveal
from tests.reliability.figures import publish

BOTS = (
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Twitterbot/1.0",
    "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    "TelegramBot (like TwitterBot)",
    "WhatsApp/2.23.20.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0)",
    "Mozilla/5.0 (compatible; proofpoint)",
    "curl/8.5.0",
)


def _paths(secret_key: str, receipt_key: str) -> list[str]:
    return [
        f"/secret/{secret_key}",
        f"/receipt/{receipt_key}",
        f"/private/{receipt_key}",
        f"{V2}/secret/{secret_key}",
        f"{V2}/private/{receipt_key}",
        f"{V2}/receipt/{receipt_key}",
        f"{V2}/secret/{secret_key}/reveal",
        f"{V2}/private/{receipt_key}/burn",
        f"/api/v1/secret/{secret_key}",
        f"/api/v1/private/{receipt_key}",
        f"/api/v1/private/{receipt_key}/burn",
    ]


async def test_every_route_fetched_by_every_bot_consumes_nothing(client: Client) -> None:
    pair = await conceal(client, "survives the previews")
    fetched = 0
    for agent in BOTS:
        for path in _paths(pair.secret_key, pair.receipt_key):
            for method in ("GET", "HEAD", "OPTIONS"):
                response = await client.request(method, path, headers={"User-Agent": agent})
                assert response.status < 500, (method, path, response.status)
                fetched += 1
    assert fetched == len(BOTS) * 11 * 3
    status, body = await reveal(client, pair.secret_key)
    publish("link_previews", bots=len(BOTS), routes=11, methods=3, requests=fetched, consumed=0)
    assert (status, body["record"]["secret_value"]) == (200, "survives the previews")
