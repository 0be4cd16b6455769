"""The webhook notifier against a real local HTTP receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from slaengine.escalation import Action, EscalationContext
from slaengine.plugins import PluginError, PluginHost
from slaengine_plugins.delivery import DeliveryError
from slaengine_plugins.webhook import WebhookNotifier, sign, verify_signature
from tests.receivers import HttpReceiver, Reply, closed_url

SECRET = "s3cret"
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
FAST = {"secret": SECRET, "backoff": 0.01, "timeout": 2}


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


def notifier(**config: Any) -> WebhookNotifier:
    plugin = WebhookNotifier()
    plugin.slaengine_configure(config={**FAST, **config})
    return plugin


def signed_by_secret(request: Any) -> bool:
    headers = request.headers
    return verify_signature(
        SECRET, headers["x-slaengine-timestamp"], request.body, headers["x-slaengine-signature"]
    )


def test_posts_the_action_as_signed_json(receiver: HttpReceiver) -> None:
    assert notifier(url=receiver.url + "/hooks/sla").slaengine_escalate(CONTEXT, NOTIFY) is True

    [request] = receiver.requests
    assert (request.method, request.path) == ("POST", "/hooks/sla")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["idempotency-key"] == "INC-1001/resolution/1/75%/0"
    assert signed_by_secret(request)
    body = request.json()
    assert body.pop("sent_at")
    assert body == {
        "ticket_id": "INC-1001",
        "metric": "resolution",
        "cycle": 1,
        "threshold": "75%",
        "instant": "2026-11-23T12:00:00+08:00",
        "plan": "urgent",
        "ruleset": "standard-support@2.0.0+abc123",
        "priority": "P1",
        "due_at": "2026-11-23T13:00:00+08:00",
        "action": {"type": "notify", "params": {"to": "duty-manager"}},
        "idempotency_key": "INC-1001/resolution/1/75%/0",
    }


def test_signature_is_hmac_of_timestamp_dot_body() -> None:
    body = b'{"ticket_id":"INC-1001"}'
    expected = hmac.new(b"k", b"1795395600." + body, hashlib.sha256).hexdigest()
    assert sign("k", "1795395600", body) == "sha256=" + expected


def test_verify_signature_refuses_other_secret_altered_body_and_stale_timestamp() -> None:
    now = str(int(time.time()))
    body = b'{"a":1}'
    header = sign(SECRET, now, body)
    assert verify_signature(SECRET, now, body, header)
    assert not verify_signature("other", now, body, header)
    assert not verify_signature(SECRET, now, b'{"a":2}', header)
    assert not verify_signature(SECRET, "not-a-number", body, header)
    old = str(int(time.time()) - 3600)
    assert not verify_signature(SECRET, old, body, sign(SECRET, old, body))
    assert verify_signature(SECRET, old, body, sign(SECRET, old, body), max_age=None)


def test_without_url_it_does_nothing() -> None:
    plugin = WebhookNotifier()
    plugin.slaengine_configure(config={})
    assert plugin.slaengine_escalate(CONTEXT, NOTIFY) is None


def test_leaves_action_types_it_is_not_configured_for(receiver: HttpReceiver) -> None:
    plugin = notifier(url=receiver.url)
    assert plugin.slaengine_escalate(CONTEXT, Action(type="raise_level")) is None
    assert receiver.requests == []


def test_a_500_is_retried_once_then_delivered(receiver: HttpReceiver) -> None:
    receiver.script(Reply(500, "busy"), Reply(200))

    assert notifier(url=receiver.url).slaengine_escalate(CONTEXT, NOTIFY) is True

    first, second = receiver.requests
    assert first.body == second.body
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    assert signed_by_secret(first) and signed_by_secret(second)


def test_retry_after_is_honoured_up_to_its_cap(receiver: HttpReceiver) -> None:
    receiver.script(Reply(429, headers={"Retry-After": "30"}), Reply(200))
    started = time.monotonic()

    assert notifier(url=receiver.url, max_retry_after=0.3).slaengine_escalate(CONTEXT, NOTIFY)

    assert 0.3 <= time.monotonic() - started < 2
    assert len(receiver.requests) == 2


def test_a_4xx_is_not_retried(receiver: HttpReceiver, tmp_path: Path) -> None:
    receiver.script(Reply(400, {"error": "unknown field"}))
    dead = tmp_path / "dead.jsonl"

    with pytest.raises(DeliveryError, match="HTTP 400.*unknown field") as raised:
        notifier(url=receiver.url, dead_letter=str(dead)).slaengine_escalate(CONTEXT, NOTIFY)

    assert (raised.value.status, raised.value.attempts) == (400, 1)
    assert len(receiver.requests) == 1
    assert json.loads(dead.read_text())["attempts"] == 1


def test_a_receiver_that_is_down_is_dead_lettered_and_raised(tmp_path: Path) -> None:
    url = closed_url("/hooks/sla")
    dead = tmp_path / "letters" / "webhook.jsonl"
    plugin = notifier(url=url, retries=2, dead_letter=str(dead))

    with pytest.raises(DeliveryError, match="ConnectError") as raised:
        plugin.slaengine_escalate(CONTEXT, NOTIFY)

    assert raised.value.attempts == 3
    [line] = dead.read_text().splitlines()
    record = json.loads(line)
    assert record["url"] == url
    assert record["attempts"] == 3
    assert "ConnectError" in record["error"]
    assert record["body"]["idempotency_key"] == CONTEXT.idempotency_key
    assert datetime.fromisoformat(record["at"]).tzinfo is not None


def test_a_slow_answer_beyond_the_timeout_is_a_failed_attempt(receiver: HttpReceiver) -> None:
    receiver.script(Reply(200, delay=1.0), Reply(200))

    assert notifier(url=receiver.url, timeout=0.2).slaengine_escalate(CONTEXT, NOTIFY) is True

    assert len(receiver.requests) == 2


def test_the_secret_can_come_from_the_environment(
    receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLA_WEBHOOK_SECRET", SECRET)
    plugin = WebhookNotifier()
    plugin.slaengine_configure(config={"url": receiver.url, "secret_env": "SLA_WEBHOOK_SECRET"})

    plugin.slaengine_escalate(CONTEXT, NOTIFY)

    assert signed_by_secret(receiver.requests[0])


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"url": "http://127.0.0.1:9/"}, "needs a secret"),
        ({"url": "http://x/", "secret_env": "SLAENGINE_TEST_UNSET"}, "is not set"),
        ({"url": "ftp://x/", "secret": "k"}, "not an http"),
        ({"url": "http://x/", "secret": "k", "retries": -1}, "retries"),
        ({"url": "http://x/", "secret": "k", "retry": 3}, "retry"),
    ],
)
def test_refuses_a_bad_configuration(config: dict[str, Any], message: str) -> None:
    host = PluginHost(entry_points=False)
    with pytest.raises(PluginError, match=message):
        host.register(WebhookNotifier(), "webhook", config)
    host.close()


def test_through_the_host_a_failing_plugin_is_reported_and_another_still_delivers(
    receiver: HttpReceiver,
) -> None:
    host = PluginHost(entry_points=False, timeout=5)
    host.register(WebhookNotifier(), "webhook-down", {**FAST, "url": closed_url(), "retries": 0})
    host.register(WebhookNotifier(), "webhook", {**FAST, "url": receiver.url})

    results = host.call("slaengine_escalate", context=CONTEXT, action=NOTIFY)

    assert results == [("webhook", True)]
    [failure] = host.failures
    assert (failure.plugin, failure.hook, failure.kind) == (
        "webhook-down",
        "slaengine_escalate",
        "error",
    )
    assert "DeliveryError" in failure.error
    assert len(receiver.requests) == 1
    with pytest.raises(DeliveryError):
        host.call_plugin("webhook-down", "slaengine_escalate", context=CONTEXT, action=NOTIFY)
    host.close()
