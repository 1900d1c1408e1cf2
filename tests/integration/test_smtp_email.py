"""The SMTP adapter against a real SMTP server (aiosmtpd on 127.0.0.1): plain, STARTTLS with a trustme
certificate and AUTH, certificate verification, permanent (5xx) and transient (4xx) replies, and the egress
policy refusing the server's address before any connection."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
import trustme

from mintlog.adapters.smtp.smtp_aiosmtplib import AiosmtplibSmtpSender
from mintlog.domain.egress import EgressPolicy, EgressRefused
from mintlog.domain.notification_email import email_message
from mintlog.domain.notification_text import NotificationText
from mintlog.ports.smtp import SmtpServer
from tests.smtp_server import SmtpTestServer

LOOPBACK = EgressPolicy.from_setting(["127.0.0.0/8"])
TEXT = NotificationText(
    headline="Incident triggered",
    title="checkout <errors> & more",
    severity="critical",
    status="triggered",
    source="high-errors",
    summary="6 errors: <script>alert(1)</script>",
    incident_id="inc_1",
    acknowledge_url="https://mintlog.example/ack?t=1&x=<2>",
)


def _message(to: str = "oncall@example.com") -> EmailMessage:
    return email_message(
        TEXT, from_address="mintlog@example.com", recipients=[to], message_key="msg_abc", now=datetime.now(UTC)
    )


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    return context


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


async def test_a_plain_server_receives_the_text_and_html_email_with_everything_escaped() -> None:
    with SmtpTestServer() as server:
        result = await AiosmtplibSmtpSender(LOOPBACK).send(
            SmtpServer(host="127.0.0.1", port=server.port, security="none"), _message(), timeout_seconds=10
        )
        assert result.ok, result.error
        [received] = server.wait_for(1)
    assert received.recipients == ["oncall@example.com"]
    assert received.mail_from == "mintlog@example.com"
    assert received.message["Subject"] == "[CRITICAL] Incident triggered: checkout <errors> & more"
    assert received.message["Message-ID"] == "<msg_abc@mintlog>"
    assert "6 errors: <script>alert(1)</script>" in received.part("plain")
    html = received.part("html")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "checkout &lt;errors&gt; &amp; more" in html
    assert 'href="https://mintlog.example/ack?t=1&amp;x=&lt;2&gt;"' in html


async def test_starttls_with_a_trusted_certificate_and_auth_delivers_over_tls(
    server_tls: ssl.SSLContext, ca_file: str
) -> None:
    with SmtpTestServer(starttls=server_tls, credentials=("alerts", "s3cret")) as server:
        target = SmtpServer(
            host="localhost", port=server.port, security="starttls", username="alerts", password="s3cret"
        )
        result = await AiosmtplibSmtpSender(LOOPBACK, ca_file=ca_file).send(target, _message(), timeout_seconds=10)
        assert result.ok, result.error
        [received] = server.wait_for(1)
    assert received.tls
    assert received.login == "alerts"


async def test_an_untrusted_certificate_fails_unless_verification_is_turned_off(server_tls: ssl.SSLContext) -> None:
    with SmtpTestServer(starttls=server_tls) as server:
        sender = AiosmtplibSmtpSender(LOOPBACK)
        verified = SmtpServer(host="localhost", port=server.port, security="starttls")
        refused = await sender.send(verified, _message(), timeout_seconds=10)
        assert not refused.ok
        assert not refused.permanent
        assert "certificate" in (refused.error or "").lower(), refused.error
        assert server.received == []
        unverified = SmtpServer(host="localhost", port=server.port, security="starttls", verify_tls=False)
        accepted = await sender.send(unverified, _message(), timeout_seconds=10)
        assert accepted.ok, accepted.error
        assert len(server.wait_for(1)) == 1


async def test_starttls_is_required_when_asked_for() -> None:
    with SmtpTestServer() as server:
        target = SmtpServer(host="127.0.0.1", port=server.port, security="starttls")
        result = await AiosmtplibSmtpSender(LOOPBACK).send(target, _message(), timeout_seconds=10)
        assert not result.ok
        assert server.received == []


async def test_a_5xx_reply_is_permanent_and_a_4xx_reply_is_transient() -> None:
    with SmtpTestServer(["550 5.1.1 mailbox unavailable", "451 4.3.0 try again later"]) as server:
        sender = AiosmtplibSmtpSender(LOOPBACK)
        target = SmtpServer(host="127.0.0.1", port=server.port, security="none")
        permanent = await sender.send(target, _message(), timeout_seconds=10)
        transient = await sender.send(target, _message(), timeout_seconds=10)
        accepted = await sender.send(target, _message(), timeout_seconds=10)
    assert (permanent.reply_code, permanent.permanent) == (550, True)
    assert (transient.reply_code, transient.permanent) == (451, False)
    # 127.0.0.1 is internal: the server's reply text is not quoted back.
    assert "mailbox unavailable" not in (permanent.error or "")
    assert "550" in (permanent.error or "")
    assert accepted.ok


async def test_a_refused_address_is_never_connected_to_and_a_closed_port_is_transient() -> None:
    with SmtpTestServer() as server:
        default_policy = AiosmtplibSmtpSender(EgressPolicy())
        refused = await default_policy.send(
            SmtpServer(host="127.0.0.1", port=server.port, security="none"), _message(), timeout_seconds=10
        )
        by_name = await default_policy.send(
            SmtpServer(host="localhost", port=server.port, security="none"), _message(), timeout_seconds=10
        )
        assert server.data_commands == 0
    assert refused.error is not None
    assert refused.error.startswith("egress refused")
    assert not refused.permanent
    assert by_name.error is not None
    assert by_name.error.startswith("egress refused")
    closed = await AiosmtplibSmtpSender(LOOPBACK).send(
        SmtpServer(host="127.0.0.1", port=server.port, security="none"), _message(), timeout_seconds=5
    )
    assert closed.error is not None
    assert not closed.permanent


@pytest.mark.parametrize("host", ["169.254.169.254", "10.0.0.1", "localhost", "0x7f.1"])
async def test_check_host_refuses_internal_hosts(host: str) -> None:
    with pytest.raises(EgressRefused):
        await AiosmtplibSmtpSender(EgressPolicy()).check_host(host)
