"""The relay connection as production uses it: STARTTLS with a verified certificate (an
internal CA, OTS_SMTP_CA_FILE), then AUTH; a relay whose certificate does not verify, or
wrong credentials, get nothing."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from app.config import Smtp
from app.notify import mail
from app.notify.mail import MailFailure, Outgoing
from tests.notify_parts import parts, smtp_server

USER, PASSWORD = b"ots-relay", b"relay password 5e1a"


def _certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (it is its own CA)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to make a test certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(  # noqa: S603  # fixed arguments
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def _authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: object
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (USER, PASSWORD)
    return AuthResult(success=ok)


def _relay(tmp_path: Path) -> tuple[Path, dict[str, object]]:
    cert, key = _certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    options: dict[str, object] = {
        "tls_context": context,
        "require_starttls": True,
        "authenticator": _authenticate,
        "auth_required": True,
    }
    return cert, options


def _message(smtp: Smtp) -> EmailMessage:
    out = Outgoing.build(smtp, "de", "https://ots.example")
    return mail.sender_mail(out, "a@example.com", "secret.revealed", "k2x9qa", datetime.now(UTC))


async def test_starttls_with_a_verified_certificate_then_auth(tmp_path: Path) -> None:
    cert, options = _relay(tmp_path)
    async with smtp_server(**options) as inbox:
        smtp = Smtp(
            host="127.0.0.1",
            port=inbox.port,
            username=USER.decode(),
            password=PASSWORD.decode(),
            ca_file=str(cert),
            timeout=5.0,
        )
        await mail.send(smtp, _message(smtp))
        [(to, message)] = inbox.messages()
    assert to == ("a@example.com",)
    assert message["Subject"] == "Ihr Geheimnis wurde gelesen"  # the catalog's German
    assert "k2x9qa" in parts(message)["html"]


async def test_implicit_tls_as_on_port_465(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    async with smtp_server(ssl_context=context) as inbox:
        smtp = Smtp(host="127.0.0.1", port=inbox.port, ca_file=str(cert), timeout=5.0)
        with pytest.raises(MailFailure):  # STARTTLS on a port that speaks TLS at once
            await mail.send(smtp, _message(smtp))
        implicit = Smtp(**{**vars(smtp), "implicit_tls": True})
        await mail.send(implicit, _message(implicit))
        [(to, _)] = inbox.messages()
    assert to == ("a@example.com",)


async def test_an_unverified_certificate_or_wrong_password_sends_nothing(tmp_path: Path) -> None:
    cert, options = _relay(tmp_path)
    async with smtp_server(**options) as inbox:
        base = Smtp(host="127.0.0.1", port=inbox.port, username=USER.decode(), timeout=5.0)
        untrusted = Smtp(**{**vars(base), "password": PASSWORD.decode()})  # system CAs only
        wrong = Smtp(**{**vars(base), "password": "guess", "ca_file": str(cert)})
        plain = Smtp(**{**vars(base), "password": PASSWORD.decode(), "starttls": False})
        for smtp in (untrusted, wrong, plain):
            with pytest.raises(MailFailure):
                await mail.send(smtp, _message(smtp))
        assert inbox.received == []
