"""Escalation deliveries are owed only to the plugins that take the action's type.

A threshold's action becomes one outbox row per plugin that will perform
it: a plugin left unconfigured is owed nothing, so no row waits for it, no
worker claims it and no idempotency key is spent on it.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from slaengine.hookspecs import hookimpl
from slaengine.plugins import PluginHost
from slaengine.service import SlaService
from slaengine.store import SqlStore
from slaengine.ticket import TicketEvent
from slaengine_plugins.smtp import SmtpNotifier
from slaengine_plugins.webhook import WebhookNotifier
from slaengine_plugins.writeback import WriteBack

CREATED = datetime.fromisoformat("2026-11-21T23:40:00+08:00")
# standard-support 2.0.0, urgent resolution: 50% and 75% notify, 100% raise_level,
# 100%+2h notify (rulesets/standard-support/2.0.0.yaml).
PLAN = {"50%": "notify", "75%": "notify", "100%": "raise_level", "100%+2h": "notify"}


class EveryAction:
    """A third-party escalation plugin that does not say which actions it takes."""

    @hookimpl
    def slaengine_escalate(self, context, action):
        return True


class BrokenAnswer:
    """An escalation plugin whose answer about its actions fails."""

    @hookimpl
    def slaengine_escalation_actions(self):
        raise RuntimeError("settings unreadable")

    @hookimpl
    def slaengine_escalate(self, context, action):
        return True


def owed(service: SlaService) -> dict[str, set[str]]:
    """Pending escalation rows: plugin -> thresholds of the resolution metric."""
    rows: dict[str, set[str]] = {}
    for row in service.store.outbox_rows():
        if row["kind"] == "escalate" and row["state"] == "pending" and "/resolution/" in row["key"]:
            threshold = row["key"].split("/")[3]
            rows.setdefault(row["key"].rsplit(":", 1)[1], set()).add(threshold)
    return rows


@pytest.fixture
def host():
    host = PluginHost(entry_points=False)
    yield host
    host.close()


def serve(shipped, database_url, host) -> SlaService:
    service = SlaService(shipped, host, SqlStore.open(database_url))
    created = TicketEvent(
        ticket_id="INC-1",
        event_id="INC-1:created",
        type="created",
        at=CREATED,
        fields={"contract": "CN-NORTHWIND-LOGISTICS-2026", "severity": "urgent"},
    )
    service.apply([created])
    return service


def test_unconfigured_bundled_plugins_are_owed_nothing(shipped, database_url, host):
    host.register(WebhookNotifier(), "webhook", {})
    host.register(SmtpNotifier(), "smtp", {})
    host.register(WriteBack(), "writeback", {})
    assert {name: takes for name, takes in host.escalators()} == {
        "webhook": frozenset(),
        "smtp": frozenset(),
        "writeback": frozenset(),
    }
    service = serve(shipped, database_url, host)
    assert owed(service) == {}
    assert {r["kind"] for r in service.store.outbox_rows()} == {"breach"}  # still owed


def test_each_configured_plugin_is_owed_the_actions_of_its_types(shipped, database_url, host):
    host.register(WebhookNotifier(), "webhook", {"url": "http://127.0.0.1:9/", "secret": "s"})
    host.register(SmtpNotifier(), "smtp", {"host": "127.0.0.1", "sender": "sla@example.com"})
    host.register(WriteBack(), "writeback", {"base_url": "http://127.0.0.1:9", "system": "zendesk"})
    service = serve(shipped, database_url, host)
    notify = {at for at, kind in PLAN.items() if kind == "notify"}
    assert owed(service) == {"webhook": notify, "smtp": notify, "writeback": {"100%"}}


def test_a_plugin_configured_for_other_types_takes_those(shipped, database_url, host):
    host.register(
        WebhookNotifier(),
        "webhook",
        {"url": "http://127.0.0.1:9/", "secret": "s", "actions": ["raise_level"]},
    )
    service = serve(shipped, database_url, host)
    assert owed(service) == {"webhook": {"100%"}}


def test_a_plugin_without_the_hook_or_with_a_failing_answer_is_owed_every_action(
    shipped, database_url, host
):
    host.register(EveryAction(), "every")
    host.register(BrokenAnswer(), "broken")
    service = serve(shipped, database_url, host)
    assert owed(service) == {"every": set(PLAN), "broken": set(PLAN)}
    assert [(f.plugin, f.hook) for f in host.failures] == [
        ("broken", "slaengine_escalation_actions")
    ]


def test_registering_a_plugin_asks_again(host):
    host.register(EveryAction(), "every")
    assert host.escalators() == (("every", None),)
    host.register(WebhookNotifier(), "webhook", {"url": "http://127.0.0.1:9/", "secret": "s"})
    assert dict(host.escalators()) == {"every": None, "webhook": frozenset({"notify"})}
