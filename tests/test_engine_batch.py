"""The batch path: matches reused by raw field values, tickets validated together.

Every ticket is checked against the same ticket decided with the engine's
caches emptied first, so a reused match can never hide a difference.
"""

from __future__ import annotations

import gc
from datetime import datetime, timedelta

import pytest

from slaengine.contract import Contract
from slaengine.decision import Decision
from slaengine.engine import Engine
from slaengine.errors import TicketError
from slaengine.library import RulesetLibrary
from slaengine.ruleset import parse_ruleset
from slaengine.ticket import parse_ticket
from slaengine.yamlsource import read_yaml

TYPED = """\
name: typed
version: 1.0.0
effective_from: 2026-01-01
timezone: Asia/Shanghai
vocabularies:
  severity: [urgent, general]
metrics:
  resolution: {stop: [resolved]}
tables:
  - name: targets
    default: {priority: P4, calendar: always, targets: {resolution: 2d}}
    rules:
      - name: flagged
        when: {fields.flag: true}
        then: {priority: P1, calendar: always, targets: {resolution: 4h}}
      - name: one
        when: {fields.flag: 1}
        then: {priority: P2, calendar: always, targets: {resolution: 8h}}
      - name: listed
        when: {fields.owners: {contains: ops}}
        then: {priority: P3, calendar: always, targets: {resolution: 1d}}
"""


def uncached(engine: Engine, ticket: dict, **kwargs) -> Decision:
    """The decision with every cache of the engine emptied first."""
    for version in engine._versions.values():
        version.cache.clear()
        version.known.clear()
    engine._routes.clear()
    return engine.evaluate(ticket, **kwargs)


@pytest.fixture
def typed():
    contract = Contract(id="C-1", customer="acme", ruleset="typed")
    library = RulesetLibrary([parse_ruleset(read_yaml(TYPED, "typed.yaml"))], [contract])
    with Engine(library) as engine:
        yield engine


def tiny(i: int, **fields) -> dict:
    return {
        "id": f"T-{i}",
        "created_at": "2026-11-23T10:00:00+08:00",
        "severity": "general",
        "contract": "C-1",
        "fields": fields,
    }


def test_values_equal_in_python_but_not_to_the_rules_are_not_confused(typed):
    # True == 1 == 1.0 in Python; to the rules only `true` is true and only 1 is 1.
    batch = [tiny(0, flag=True), tiny(1, flag=1), tiny(2, flag=1.0), tiny(3, flag="1")]
    got = [d.priority for d in typed.evaluate_many(batch)]
    assert got == ["P1", "P2", "P2", "P4"]
    assert [d.priority for d in typed.evaluate_many(batch[::-1])] == got[::-1]


def test_items_of_tuples_are_not_confused_either(typed):
    # A Python caller may give tuples: (True,) == (1,) in Python, not to the rules.
    text = TYPED.replace("fields.owners: {contains: ops}", "fields.codes: {contains: true}")
    contract = Contract(id="C-1", customer="acme", ruleset="typed")
    library = RulesetLibrary([parse_ruleset(read_yaml(text, "typed.yaml"))], [contract])
    with Engine(library) as engine:
        batch = [tiny(0, codes=(True,)), tiny(1, codes=(1,)), tiny(2, codes=(True,))]
        assert [d.priority for d in engine.evaluate_many(batch)] == ["P3", "P4", "P3"]


def test_list_values_are_decided_without_the_value_cache(typed):
    batch = [tiny(0, owners=["ops"]), tiny(1, owners=["dev"]), tiny(2, owners=["dev", "ops"])]
    decisions = typed.evaluate_many(batch * 2)
    assert [d.priority for d in decisions] == ["P3", "P4", "P3"] * 2
    assert decisions == [uncached(typed, t) for t in batch * 2]


def test_a_batch_spread_over_hours_and_contracts_equals_uncached_decisions(shipped):
    contracts = ["CN-HUAXIA-BANK-2026", "CN-NORTHWIND-LOGISTICS-2026", "INTL-CONTOSO-2026"]
    severities = ["urgent", "serious", "general", "consultation"]
    start = datetime.fromisoformat("2026-09-28T00:00:00+08:00")  # national holidays follow
    batch = [
        {
            "id": f"T-{i}",
            "contract": contracts[i % 3],
            "severity": severities[i % 4],
            "channel": ["phone", "email"][i % 2],
            "category": ["security", "database"][i % 2],
            "created_at": (start + timedelta(minutes=97 * i)).isoformat(),
        }
        for i in range(300)
    ]
    decisions = shipped.evaluate_many(batch)
    assert decisions == [uncached(shipped, t) for t in batch]
    # The derived fact in_hours.business splits the same fields into two matches.
    assert len({d.matched_rules for d in decisions}) > len(severities) * 2


def test_tickets_and_mappings_mixed_keep_their_order(shipped):
    from tests.test_engine import ticket

    batch = [ticket(id=f"T-{i}", severity=s) for i, s in enumerate(["urgent", "general"] * 3)]
    mixed = [parse_ticket(t) if i % 2 else t for i, t in enumerate(batch)]
    assert [d.ticket_id for d in shipped.evaluate_many(mixed)] == [t["id"] for t in batch]
    assert shipped.evaluate_many(iter(mixed)) == shipped.evaluate_many(batch)


@pytest.mark.parametrize(
    ("bad", "path", "message"),
    [
        ({"created_at": "2026-11-23T10:00:00"}, "[2].created_at", "has no timezone"),
        ({"severity": "blocker"}, "[2].severity", "not a declared severity"),
        ({"colour": "red"}, "[2].colour", "unknown field"),
        ({"tier": "gold"}, "[2].tier", "contradicts contract"),
    ],
)
def test_the_first_bad_ticket_of_a_batch_is_named_by_position(shipped, bad, path, message):
    from tests.test_engine import ticket

    batch = [ticket(id="A"), ticket(id="B"), {**ticket(id="C"), **bad}, ticket(id="D")]
    with pytest.raises(TicketError, match=message) as info:
        shipped.evaluate_many(batch)
    assert info.value.path == path


def test_the_first_problem_in_order_is_reported(shipped):
    from tests.test_engine import ticket

    unknown = ticket(id="A", contract="NO-SUCH-CONTRACT")  # found when routing
    naive = ticket(id="B", created_at="2026-11-23T10:00:00")  # found when parsing
    with pytest.raises(TicketError, match="unknown contract") as info:
        shipped.evaluate_many([unknown, naive])
    assert info.value.path == "[0].contract"


def test_an_item_that_is_not_a_mapping_is_named(shipped):
    from tests.test_engine import ticket

    with pytest.raises(TicketError, match="must be a JSON object, not str") as info:
        shipped.evaluate_many([ticket(), "T-2"])
    assert info.value.path == "[1]"


def test_the_garbage_collector_is_restored_after_a_batch(shipped):
    from tests.test_engine import ticket

    assert gc.isenabled()
    shipped.evaluate_many([ticket()])
    assert gc.isenabled()
    with pytest.raises(TicketError):
        shipped.evaluate_many([ticket(severity="blocker")])
    assert gc.isenabled()
    gc.disable()
    try:
        shipped.evaluate_many([ticket()])
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        gc.enable()
