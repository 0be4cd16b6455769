"""The field values a ruleset reads from a ticket, derived facts included.

Derived facts are computed at the ticket's ``created_at``: ``local_weekday``
and ``local_hour`` in the ruleset's timezone, ``in_hours.CAL`` (is calendar
CAL open then?) and ``holiday.CAL`` (is that local date a holiday of CAL?).
``facts.NAME`` come from plugins (e.g. a CRM saying a customer is strategic).
"""

from __future__ import annotations

import math
from typing import Any
from zoneinfo import ZoneInfo

from slaengine.condition import MISSING, NUMERIC_OPS, iter_tests
from slaengine.errors import TicketError
from slaengine.ruleset import WEEKDAYS, CompiledRuleset
from slaengine.ticket import Ticket


class FieldReader:
    """Reads, checks and derives the fields one ruleset version needs from tickets."""

    def __init__(self, ruleset: CompiledRuleset) -> None:
        self.ruleset = ruleset
        self.zone = ZoneInfo(ruleset.model.timezone)
        tests = [t for c in ruleset.conditions.values() for t in iter_tests(c)]
        self.fields = sorted({t.field for t in tests})
        self.numeric = {t.field for t in tests if t.op in NUMERIC_OPS} | {
            t.field for t in tests
            if t.op in ("eq", "ne", "in", "not_in")
            and all(_is_number(v) for v in (t.value if isinstance(t.value, tuple) else (t.value,)))
        }
        self.list_fields = {
            t.field for t in tests if t.op == "contains"
        } - {t.field for t in tests if t.op not in ("contains", "exists")}
        self.vocabularies = ruleset.model.vocabularies

    def read(self, ticket: Ticket, facts: dict[str, Any] | None = None) -> dict[str, Any]:
        """Field -> value for every field the rules read (absent fields left out).

        Raises TicketError (with the field path) for a value outside a declared
        vocabulary, a missing required vocabulary field, or a value of the
        wrong type for how the rules test it.
        """
        for name, vocab in self.vocabularies.items():
            if name == "priority":
                continue
            value = self._lookup(ticket, name, facts)
            if value is MISSING or value is None:
                if vocab.required:
                    raise TicketError(
                        f"missing; {self.ruleset.model.label} needs it (one of {', '.join(vocab.rank)})",
                        name,
                    )
            elif value not in vocab.rank:
                raise TicketError(
                    f"{value!r} is not a declared {name} of {self.ruleset.model.label}; "
                    f"use one of {', '.join(vocab.rank)}",
                    name,
                )
        values: dict[str, Any] = {}
        for name in self.fields:
            value = self._lookup(ticket, name, facts)
            if value is MISSING or value is None:
                continue
            if isinstance(value, (list, tuple)) and name not in self.list_fields:
                raise TicketError("must be a plain value (text, number or true/false)", name)
            if isinstance(value, dict):
                raise TicketError("must be a plain value or a list, not a mapping", name)
            if name in self.numeric and not _is_number(value):
                raise TicketError(f"{value!r} is not a number; the rules compare it as one", name)
            if isinstance(value, float) and not math.isfinite(value):
                raise TicketError(f"{value!r} is not a finite number", name)
            values[name] = value
        return values

    def _lookup(self, ticket: Ticket, name: str, facts: dict[str, Any] | None) -> Any:
        if name.startswith("fields."):
            return ticket.fields.get(name[7:], MISSING)
        if name.startswith("facts."):
            return (facts or {}).get(name[6:], MISSING)
        if name == "tags":
            return list(ticket.tags)
        if name == "local_weekday":
            return WEEKDAYS[ticket.created_at.astimezone(self.zone).weekday()]
        if name == "local_hour":
            return ticket.created_at.astimezone(self.zone).hour
        if name.startswith("in_hours."):
            return self.ruleset.calendars[name[9:]].is_open(ticket.created_at)
        if name.startswith("holiday."):
            calendar = self.ruleset.calendars[name[8:]]
            return calendar.is_holiday(ticket.created_at)
        return getattr(ticket, name, MISSING)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
