"""Notification e-mail: plain text plus HTML from the message catalog, sent over SMTP."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import jinja2

from app.config import Smtp
from app.web.i18n import Translator, catalog

ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


class MailFailure(Exception):
    """The relay could not be used or refused the message."""


def message(smtp: Smtp, to: str, subject: str, template: str, **context: object) -> EmailMessage:
    """`template`.txt and .html rendered with `t` (the translator) and `context`."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = smtp.sender, to, subject
    msg.set_content(ENV.get_template(f"{template}.txt").render(**context))
    msg.add_alternative(ENV.get_template(f"{template}.html").render(**context), subtype="html")
    return msg


@dataclass(frozen=True)
class Outgoing:
    """What every message needs: the relay, the language, the site to name."""

    smtp: Smtp
    t: Translator
    site: str

    @classmethod
    def build(cls, smtp: Smtp, locale: str, site: str) -> Outgoing:
        return cls(smtp, Translator(locale, catalog(locale)), site)


def recipient_mail(out: Outgoing, to: str, url: str, sender: str | None) -> EmailMessage:
    t = out.t
    context = {"url": url, "sender": sender or t("mail.recipient.someone"), "site": out.site}
    return message(
        out.smtp, to, t("mail.recipient.subject"), "recipient", t=t, lang=t.locale, **context
    )


def sender_mail(out: Outgoing, to: str, event: str, shortid: str, when: datetime) -> EmailMessage:
    """Revealed or expired: the short reference and the time, never a link."""
    t = out.t
    context = {"event": event, "shortid": shortid, "when": when, "site": out.site}
    subject = t(f"mail.sender.subject.{event}")
    return message(out.smtp, to, subject, "sender", t=t, lang=t.locale, **context)


async def send(smtp: Smtp, msg: EmailMessage) -> None:
    """One delivery, bounded as a whole (connect, STARTTLS, auth, data). The worker does
    not call it without a relay (OTS_SMTP_HOST)."""
    try:
        async with asyncio.timeout(2 * smtp.timeout):
            await aiosmtplib.send(
                msg,
                hostname=smtp.host,
                port=smtp.port,
                username=smtp.username or None,
                password=smtp.password or None,
                use_tls=smtp.implicit_tls,
                start_tls=smtp.starttls and not smtp.implicit_tls,
                cert_bundle=smtp.ca_file or None,
                timeout=smtp.timeout,
            )
    except aiosmtplib.SMTPResponseException as exc:
        raise MailFailure(f"SMTP {exc.code}") from None
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise MailFailure(type(exc).__name__) from None
