"""slaengine: a rules-driven SLA policy engine for helpdesk systems."""

import os

if os.environ.get("SLAENGINE_PURE_PYTHON", "").lower() in ("1", "true", "yes", "on"):
    from slaengine import _pure

    _pure.install()  # before any compiled module loads

from slaengine.calendar import Calendar
from slaengine.decision import Decision, MetricTarget, Route
from slaengine.engine import Engine, Explanation
from slaengine.errors import (
    CalendarError,
    EventError,
    NaiveDatetimeError,
    NoRuleMatched,
    RulesetError,
    RulesetErrors,
    SlaEngineError,
    TicketError,
)
from slaengine.library import RulesetLibrary, load_directory, load_ruleset_file
from slaengine.ticket import Ticket, TicketEvent

__all__ = [
    "Calendar",
    "CalendarError",
    "Decision",
    "Engine",
    "EventError",
    "Explanation",
    "MetricTarget",
    "NaiveDatetimeError",
    "NoRuleMatched",
    "Route",
    "RulesetError",
    "RulesetErrors",
    "RulesetLibrary",
    "SlaEngineError",
    "Ticket",
    "TicketError",
    "TicketEvent",
    "load_directory",
    "load_ruleset_file",
]
