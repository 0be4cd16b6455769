"""The e-mail notifier against a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from slaengine.escalation import Action, EscalationContext
from slaengine.plugins import PluginError, PluginHost
from slaengine_plugins.delivery import DeliveryError
from slaengine_plugins.smtp import SmtpNotifier
from tests.receivers import SmtpReceiver, free_port

CONTEXT = EscalationContext(
    ticket_id="INC-1001",
    metric="resolution",
    cycle=1,
    threshold="75%",
    instant=datetime.fromisoformat("2026-11-23T12:00:00+08:00"),
    action_index=0,
    plan="urgent",
    ruleset="standard-support@2.0.0+abc123",
    priority="P1",
    due_at=datetime.fromisoformat("2026-11-23T13:00:00+08:00"),
)
NOTIFY = Action(type="notify", params={"to": "duty-manager"})
RECIPIENTS = {"duty-manager": ["duty@example.com", "backup@example.com"]}


@pytest.fixture
def server() -> Iterator[SmtpReceiver]:
    with SmtpReceiver() as server:
        yield server


def notifier(**config: Any) -> SmtpNotifier:
    plugin = SmtpNotifier()
    settings = {"sender": "sla@example.com", "recipients": RECIPIENTS, "backoff": 0.01}
    plugin.slaengine_configure(config={**settings, **config})
    return plugin


def test_the_mail_arrives_with_subject_recipients_and_facts(server: SmtpReceiver) -> None:
    plugin = notifier(host="127.0.0.1", port=server.port)

    assert plugin.slaengine_escalate(CONTEXT, NOTIFY) is True

    [mail] = server.mail
    assert mail.sender == "sla@example.com"
    assert mail.recipients == ["duty@example.com", "backup@example.com"]
    message = mail.message
    assert message["Subject"] == "[SLA] INC-1001 resolution at 75%: notify duty-manager"
    assert message["To"] == "duty@example.com, backup@example.com"
    assert message["X-Idempotency-Key"] == "INC-1001/resolution/1/75%/0"
    body = message.get_content()
    assert "Due at:    2026-11-23T13:00:00+08:00" in body
    assert "Ruleset:   standard-support@2.0.0+abc123" in body
    assert "Priority:  P1" in body


def test_a_resent_notice_keeps_its_message_id(server: SmtpReceiver) -> None:
    plugin = notifier(host="127.0.0.1", port=server.port, sender="SLA Bot <sla@example.com>")
    plugin.slaengine_escalate(CONTEXT, NOTIFY)
    plugin.slaengine_escalate(CONTEXT, NOTIFY)

    first, second = server.mail
    assert first.message["Message-ID"] == second.message["Message-ID"]
    assert first.message["Message-ID"].endswith("@example.com>")


def test_params_email_adds_addresses(server: SmtpReceiver) -> None:
    plugin = notifier(host="127.0.0.1", port=server.port)
    action = Action(type="notify", params={"to": "duty-manager", "email": "vp@example.com"})

    plugin.slaengine_escalate(CONTEXT, action)

    assert server.mail[0].recipients == [
        "duty@example.com",
        "backup@example.com",
        "vp@example.com",
    ]


def test_an_unknown_target_is_not_for_this_plugin(server: SmtpReceiver) -> None:
    plugin = notifier(host="127.0.0.1", port=server.port)
    assert (
        plugin.slaengine_escalate(CONTEXT, Action(type="notify", params={"to": "nobody"})) is None
    )
    assert server.mail == []


def test_without_host_it_does_nothing() -> None:
    plugin = SmtpNotifier()
    plugin.slaengine_configure(config={})
    assert plugin.slaengine_escalate(CONTEXT, NOTIFY) is None


def test_logs_in_when_given_a_username(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any):
        assert isinstance(auth_data, LoginPassword)
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"pw")

    monkeypatch.setenv("SLA_SMTP_PASSWORD", "pw")
    with SmtpReceiver(authenticator=authenticator, auth_require_tls=False) as server:
        plugin = notifier(
            host="127.0.0.1", port=server.port, username="bot", password_env="SLA_SMTP_PASSWORD"
        )
        plugin.slaengine_escalate(CONTEXT, NOTIFY)

    assert logins == [(b"bot", b"pw")]
    assert len(server.mail) == 1


def test_starttls_is_required_when_configured(server: SmtpReceiver) -> None:
    plugin = notifier(host="127.0.0.1", port=server.port, starttls=True)

    with pytest.raises(DeliveryError, match="STARTTLS") as raised:
        plugin.slaengine_escalate(CONTEXT, NOTIFY)

    assert raised.value.attempts == 1
    assert server.mail == []


def test_a_server_that_is_down_is_retried_dead_lettered_and_raised(tmp_path: Path) -> None:
    dead = tmp_path / "smtp.jsonl"
    plugin = notifier(host="127.0.0.1", port=free_port(), retries=1, dead_letter=str(dead))

    with pytest.raises(DeliveryError, match="ConnectionRefusedError") as raised:
        plugin.slaengine_escalate(CONTEXT, NOTIFY)

    assert raised.value.attempts == 2
    record = json.loads(dead.read_text())
    assert record["to"] == RECIPIENTS["duty-manager"]
    assert record["subject"].startswith("[SLA] INC-1001")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"host": "127.0.0.1", "sender": None}, "needs a sender"),
        ({"username": "bot"}, "together"),
        ({"recipients": {"duty-manager": 3}}, "recipients"),
    ],
)
def test_refuses_a_bad_configuration(config: dict[str, Any], message: str) -> None:
    host = PluginHost(entry_points=False)
    with pytest.raises(PluginError, match=message):
        host.register(SmtpNotifier(), "smtp", {"sender": "sla@example.com", **config})
    host.close()
