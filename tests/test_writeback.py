"""Write-back to Zendesk, Jira and ServiceNow, against a real local HTTP receiver."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from slaengine.decision import Decision, MetricTarget, Route, RoutingResult
from slaengine.escalation import Action, EscalationContext
from slaengine.plugins import PluginError, PluginHost
from slaengine.ticket import Ticket
from slaengine_plugins.delivery import DeliveryError
from slaengine_plugins.writeback import WriteBack, WriteBackError
from tests.receivers import HttpReceiver, Reply

DUE = datetime.fromisoformat("2026-11-24T01:30:00+08:00")
DECISION = Decision(
    ticket_id="35436",
    ruleset="standard-support",
    version="2.0.0",
    revision="abc123",
    priority="P1",
    targets={"resolution": MetricTarget(target="4h", seconds=14400, calendar="always", due_at=DUE)},
    route=Route(group="senior-engineers", assignee="li.wei"),
)
CONTEXT = EscalationContext(
    ticket_id="35436",
    metric="resolution",
    cycle=1,
    threshold="100%",
    instant=DUE,
    action_index=0,
    plan="urgent",
    ruleset="standard-support@2.0.0+abc123",
)
MAPS = {
    "group_map": {"senior-engineers": 98738},
    "assignee_map": {"li.wei": 20978392},
    "priority_map": {"P1": "urgent"},
}


def ticket(ticket_id: str) -> Ticket:
    return Ticket(id=ticket_id, created_at=DUE, severity="urgent")


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WRITEBACK_TOKEN", "tok")


def writeback(receiver: HttpReceiver, **config: Any) -> WriteBack:
    plugin = WriteBack()
    settings = {"base_url": receiver.url, "token_env": "WRITEBACK_TOKEN", "backoff": 0.01}
    plugin.slaengine_configure(config={**settings, **config})
    return plugin


def test_zendesk_route_puts_group_assignee_and_priority(receiver: HttpReceiver) -> None:
    plugin = writeback(receiver, system="zendesk", **MAPS)

    result = plugin.slaengine_route(ticket("35436"), DECISION)

    assert result == RoutingResult(
        plugin="writeback",
        ticket_id="35436",
        applied={"group": "senior-engineers", "assignee": "li.wei", "priority": "P1"},
    )
    [request] = receiver.requests
    assert (request.method, request.path) == ("PUT", "/api/v2/tickets/35436.json")
    assert request.headers["authorization"] == "Bearer tok"
    assert request.json() == {
        "ticket": {"group_id": 98738, "assignee_id": 20978392, "priority": "urgent"}
    }


def test_jira_route_puts_fields_with_due_date_and_basic_auth(receiver: HttpReceiver) -> None:
    receiver.default = Reply(204)
    plugin = writeback(
        receiver,
        system="jira",
        username="bot@acme.com",
        group_field="customfield_10001",
        group_map={"senior-engineers": "team-42"},
        assignee_map={"li.wei": "712020:f1ad"},
        priority_map={"P1": "Highest"},
    )

    result = plugin.slaengine_route(
        ticket("SUP-22"), DECISION.model_copy(update={"ticket_id": "SUP-22"})
    )

    assert result is not None and result.applied["due_at"] == DUE.isoformat()
    [request] = receiver.requests
    assert (request.method, request.path) == ("PUT", "/rest/api/3/issue/SUP-22")
    credentials = base64.b64decode(request.headers["authorization"].removeprefix("Basic "))
    assert credentials == b"bot@acme.com:tok"
    assert request.json() == {
        "fields": {
            "customfield_10001": "team-42",
            "assignee": {"accountId": "712020:f1ad"},
            "priority": {"name": "Highest"},
            "duedate": "2026-11-24",
        }
    }


def test_servicenow_route_patches_incident_with_impact_and_urgency(
    receiver: HttpReceiver,
) -> None:
    receiver.default = Reply(200, {"result": {}})
    sys_id = "9d385017c611228701d22104cc95c371"
    plugin = writeback(
        receiver,
        system="servicenow",
        group_map={"senior-engineers": "287ebd7da9fe198100f92cc8d1d2154e"},
        priority_map={"P1": {"impact": "1", "urgency": "1"}},
    )

    plugin.slaengine_route(ticket(sys_id), DECISION.model_copy(update={"ticket_id": sys_id}))

    [request] = receiver.requests
    assert (request.method, request.path) == ("PATCH", f"/api/now/table/incident/{sys_id}")
    assert request.json() == {
        "assignment_group": "287ebd7da9fe198100f92cc8d1d2154e",
        "impact": "1",
        "urgency": "1",
        "due_date": "2026-11-23 17:30:00",
    }


def test_reassign_sets_the_group(receiver: HttpReceiver) -> None:
    plugin = writeback(receiver, system="zendesk", **MAPS)
    action = Action(type="reassign", params={"group": "senior-engineers"})

    assert plugin.slaengine_escalate(CONTEXT, action) is True

    assert receiver.requests[0].json() == {"ticket": {"group_id": 98738}}


def test_raise_level_tags_zendesk_and_sets_the_level_priority(receiver: HttpReceiver) -> None:
    plugin = writeback(receiver, system="zendesk", level_priority={"L3": "P1"}, **MAPS)

    plugin.slaengine_escalate(CONTEXT, Action(type="raise_level", params={"level": "L3"}))

    assert receiver.requests[0].json() == {
        "ticket": {"priority": "urgent", "additional_tags": ["support-level-L3"]}
    }


def test_raise_level_adds_a_jira_label(receiver: HttpReceiver) -> None:
    receiver.default = Reply(204)
    plugin = writeback(receiver, system="jira")

    plugin.slaengine_escalate(
        CONTEXT.model_copy(update={"ticket_id": "SUP-22"}),
        Action(type="raise_level", params={"level": "L3"}),
    )

    request = receiver.requests[0]
    assert request.path == "/rest/api/3/issue/SUP-22"
    assert request.json() == {"fields": {}, "update": {"labels": [{"add": "support-level-L3"}]}}


def test_raise_level_sets_the_servicenow_level_field_with_a_work_note(
    receiver: HttpReceiver,
) -> None:
    plugin = writeback(receiver, system="servicenow", level_field="u_support_level")

    plugin.slaengine_escalate(CONTEXT, Action(type="raise_level", params={"level": "L3"}))

    body = receiver.requests[0].json()
    assert body["u_support_level"] == "L3"
    assert body["work_notes"].startswith("Support level raised to L3: resolution at 100%")


def test_other_actions_are_not_for_it(receiver: HttpReceiver) -> None:
    plugin = writeback(receiver, system="zendesk", **MAPS)
    assert plugin.slaengine_escalate(CONTEXT, Action(type="notify")) is None
    assert receiver.requests == []


def test_a_non_2xx_answer_raises_with_status_and_body(
    receiver: HttpReceiver, tmp_path: Path
) -> None:
    receiver.default = Reply(422, {"error": "RecordInvalid", "details": "group_id"})
    dead = tmp_path / "writeback.jsonl"
    plugin = writeback(receiver, system="zendesk", dead_letter=str(dead), **MAPS)

    with pytest.raises(DeliveryError, match="HTTP 422.*RecordInvalid") as raised:
        plugin.slaengine_route(ticket("35436"), DECISION)

    assert raised.value.status == 422
    assert len(receiver.requests) == 1
    assert json.loads(dead.read_text())["body"]["ticket"]["group_id"] == 98738


def test_a_503_is_retried(receiver: HttpReceiver) -> None:
    receiver.script(Reply(503))
    plugin = writeback(receiver, system="zendesk", **MAPS)

    assert plugin.slaengine_route(ticket("35436"), DECISION) is not None
    assert len(receiver.requests) == 2


def test_a_name_missing_from_a_map_raises_before_sending(receiver: HttpReceiver) -> None:
    plugin = writeback(receiver, system="zendesk", group_map={"tier-1": 1})

    with pytest.raises(WriteBackError, match="'senior-engineers' is not in group_map"):
        plugin.slaengine_route(ticket("35436"), DECISION)
    assert receiver.requests == []


def test_fields_without_a_map_are_left_alone(receiver: HttpReceiver) -> None:
    plugin = writeback(receiver, system="zendesk", group_map=MAPS["group_map"])

    result = plugin.slaengine_route(ticket("35436"), DECISION)

    assert result is not None and result.applied == {"group": "senior-engineers"}
    assert receiver.requests[0].json() == {"ticket": {"group_id": 98738}}


def test_without_base_url_it_does_nothing() -> None:
    plugin = WriteBack()
    plugin.slaengine_configure(config={})
    assert plugin.slaengine_route(ticket("35436"), DECISION) is None
    assert plugin.slaengine_escalate(CONTEXT, Action(type="reassign")) is None


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"base_url": "http://x"}, "needs a system"),
        ({"base_url": "http://x", "system": "freshdesk"}, "system"),
        ({"system": "jira", "username": "bot"}, "needs token_env"),
        ({"system": "jira", "token_env": "SLAENGINE_TEST_UNSET"}, "is not set"),
    ],
)
def test_refuses_a_bad_configuration(config: dict[str, Any], message: str) -> None:
    host = PluginHost(entry_points=False)
    with pytest.raises(PluginError, match=message):
        host.register(WriteBack(), "writeback", config)
    host.close()
