"""Hook specifications: how plugins connect slaengine to ticket systems.

Every hook is named ``slaengine_*`` and implemented with the
:data:`hookimpl` marker. Plugins register through the ``slaengine``
entry-point group (the bundled ones in ``plugins/`` too), so a third-party
plugin is found once it is ``pip install``-ed.

A plugin that raises, or takes longer than its timeout, is isolated: its
error is reported with the plugin's name and the other plugins still run
(see :class:`slaengine.plugins.PluginHost`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from slaengine.clock import MetricStatus
    from slaengine.contract import Contract
    from slaengine.decision import Decision, RoutingResult
    from slaengine.escalation import Action, EscalationContext
    from slaengine.intake import Intake
    from slaengine.penalty import CreditLine, StatementPeriod
    from slaengine.ticket import Ticket

PROJECT = "slaengine"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def slaengine_configure(config: Mapping[str, Any]) -> None:
    """Called once after the plugin is registered, with its section of the plugin config.

    ``config`` is the mapping under ``plugins.<name>`` of the plugin
    configuration YAML (empty when there is none). Raise ``ValueError`` to
    refuse a bad configuration; the message is shown with the plugin's name.
    """


@hookspec(firstresult=True)
def slaengine_intake(
    source: str, payload: Mapping[str, Any], headers: Mapping[str, str]
) -> Intake | None:
    """Turn a ticket system's payload into a ticket and/or ticket events.

    Called for each payload received from ticket system ``source`` (e.g.
    ``zendesk``, ``jira``, ``servicenow``). An adapter returns an
    :class:`~slaengine.intake.Intake` when ``source`` is its own and
    None otherwise; the first non-None result wins. Raise
    :class:`~slaengine.errors.TicketError` naming the field path when the
    payload is malformed.
    """


@hookspec
def slaengine_facts(ticket: Ticket) -> Mapping[str, Any] | None:
    """Add derived facts before matching (rules read them as ``facts.NAME``).

    Called before every evaluation. Return a mapping of fact name to a plain
    value (text, number, true/false), or None. Results of all plugins are
    merged; a later-registered plugin wins on a name clash.
    """


@hookspec
def slaengine_route(ticket: Ticket, decision: Decision) -> RoutingResult | None:
    """Choose and apply a queue/group/assignee for a decided ticket.

    Called after each decision that has a route, once the event that led to
    it is stored; under ``slaengine serve`` on a thread of its own, in the
    order of the decisions, so the request that led to it does not wait. A
    write-back plugin sets the ticket system's fields and returns what it
    applied; return None when the ticket is not for this plugin.
    """


@hookspec
def slaengine_escalate(context: EscalationContext, action: Action) -> bool | None:
    """Perform one escalation action (notify, reassign, raise the support level...).

    Called once per action of a threshold that has come due, per metric
    cycle. ``context.idempotency_key`` identifies (ticket, metric, cycle,
    threshold, action): send it along so receivers can drop repeats. Return
    True when this plugin performed the action, None when the action is not
    for it. Raise to report failure (the caller retries or dead-letters).
    """


@hookspec
def slaengine_escalation_actions() -> Collection[str] | None:
    """The action types this plugin performs, as it is configured now.

    Asked when deliveries are planned: an escalation action is owed to a
    plugin (an outbox row, a delivery, an idempotency key) only when its
    type is in the answer, so a plugin left unconfigured is owed nothing.
    A plugin that does not implement this hook is owed every action, and
    declines at delivery what is not for it (``slaengine_escalate`` returns
    None).
    """


@hookspec
def slaengine_breach(ticket_id: str, status: MetricStatus) -> None:
    """Told when a metric breaches (once per metric cycle). Return value ignored."""


@hookspec
def slaengine_penalty(
    contract: Contract, period: StatementPeriod, lines: list[CreditLine]
) -> list[CreditLine] | None:
    """Compute or adjust service credits for one contract and period.

    ``lines`` holds the credit lines computed so far (by earlier plugins).
    Return a list of additional lines, or None. Plugins run in registration
    order, so an adjusting plugin registered after a computing one sees its
    lines.
    """


@hookspec
def slaengine_decision(ticket: Ticket, decision: Decision) -> None:
    """Observe every decision (audit logs, metrics). Return value ignored.

    Called as :func:`slaengine_route` is, before it for the same decision.
    """
