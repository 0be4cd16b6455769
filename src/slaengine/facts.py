"""The field values a ruleset reads from a ticket, derived facts included.

Derived facts are computed at the ticket's ``created_at``: ``local_weekday``
and ``local_hour`` in the ruleset's timezone, ``in_hours.CAL`` (is calendar
CAL open then?) and ``holiday.CAL`` (is that local date a holiday of CAL?).
``facts.NAME`` come from plugins (e.g. a CRM saying a customer is strategic).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from operator import attrgetter
from typing import Any
from zoneinfo import ZoneInfo

from slaengine.condition import MISSING, NUMERIC_OPS, iter_tests
from slaengine.errors import TicketError
from slaengine.ruleset import WEEKDAYS, CompiledRuleset
from slaengine.ticket import Ticket

#: Classes of values a key holds as they are (with their class; MISSING is an object()).
_SCALARS = frozenset({str, int, float, bool, type(None), type(MISSING)})
#: Stands for any other value in a key: a list cannot be hashed, so neither can the key.
_UNKEYED: list[Any] = []


class FieldReader:
    """Reads, checks and derives the fields one ruleset version needs from tickets."""

    def __init__(self, ruleset: CompiledRuleset) -> None:
        self.ruleset = ruleset
        self.zone = ZoneInfo(ruleset.model.timezone)
        tests = [t for c in ruleset.conditions.values() for t in iter_tests(c)]
        fields = sorted({t.field for t in tests})
        # Only ordered comparisons demand numbers; equality keeps types apart
        # (``1`` is simply not equal to ``"1"`` or ``true``).
        self.numeric = {t.field for t in tests if t.op in NUMERIC_OPS}
        # A list is a value only for fields the rules test with contains/exists.
        self.list_fields = {t.field for t in tests if t.op in ("contains", "exists")} - {
            t.field for t in tests if t.op not in ("contains", "exists")
        }
        self.getters = [(name, self._getter(name)) for name in fields]
        # Everything ``read`` looks at, as hashable raw values: see ``key``.
        # Ticket attributes have types fixed by the model and are read in one
        # call; other fields carry their type; derived facts come from the
        # creation instant in epoch microseconds.
        seen = sorted(set(fields) | (set(ruleset.model.vocabularies) - {"priority"}))
        plain = [n for n in seen if n in Ticket.model_fields and n != "fields"]
        self._plain = attrgetter(*plain) if plain else None
        self._open = [
            ruleset.calendars[n[9:]].arithmetic for n in seen if n.startswith("in_hours.")
        ]
        self._other = [
            self._getter(n) for n in seen if n not in plain and not n.startswith("in_hours.")
        ]
        self.vocabularies = [
            (name, self._getter(name), frozenset(vocab.rank), vocab.required, ", ".join(vocab.rank))
            for name, vocab in ruleset.model.vocabularies.items()
            if name != "priority"  # priority is an outcome, not a ticket field
        ]

    def read(
        self,
        ticket: Ticket,
        facts: dict[str, Any] | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Field -> value for every field the rules read (absent fields left out).

        ``overrides`` replace ticket attributes (the contract's tier). Raises
        TicketError (with the field path) for a value outside a declared
        vocabulary, a missing required vocabulary field, or a value of the
        wrong type for how the rules test it.
        """
        for name, get, allowed, required, listing in self.vocabularies:
            value = overrides[name] if overrides and name in overrides else get(ticket, facts)
            if value is MISSING or value is None:
                if required:
                    raise TicketError(
                        f"missing; {self.ruleset.model.label} needs it (one of {listing})", name
                    )
            elif not isinstance(value, str) or value not in allowed:
                raise TicketError(
                    f"{value!r} is not a declared {name} of {self.ruleset.model.label}; "
                    f"use one of {listing}",
                    name,
                )
        values: dict[str, Any] = {}
        for name, get in self.getters:
            value = overrides[name] if overrides and name in overrides else get(ticket, facts)
            if value is MISSING or value is None:
                continue
            if type(value) is not str or name in self.numeric:
                self._check(name, value)
            values[name] = value
        return values

    def key(self, ticket: Ticket, facts: dict[str, Any] | None, start_us: int) -> tuple[Any, ...]:
        """The raw values ``read`` would look at; ``start_us`` is ``created_at`` in epoch µs.

        Two tickets with equal keys (and the same overrides) read alike, so a
        result computed for one (validation included) holds for the other.
        Values of ``fields.*`` and ``facts.*`` carry their type, because
        ``1``, ``1.0`` and ``True`` are equal in Python but not to the rules.
        Any value other than text, a number, true/false or none (a list,
        tuple or mapping, whose items could be ``1`` and ``True`` alike)
        makes hashing the key raise TypeError: such tickets are not keyed.
        """
        return (
            self._plain(ticket) if self._plain else None,
            tuple([calendar.is_open(start_us) for calendar in self._open]),
            tuple(
                [
                    v
                    if v.__class__ is str
                    else (v.__class__, v)
                    if v.__class__ in _SCALARS
                    else _UNKEYED
                    for v in [get(ticket, facts) for get in self._other]
                ]
            ),
        )

    def _check(self, name: str, value: Any) -> None:
        if isinstance(value, (list, tuple)) and name not in self.list_fields:
            raise TicketError("must be a plain value (text, number or true/false)", name)
        if isinstance(value, dict):
            raise TicketError("must be a plain value or a list, not a mapping", name)
        if name in self.numeric and not _is_number(value):
            raise TicketError(f"{value!r} is not a number; the rules compare it as one", name)
        if isinstance(value, float) and not math.isfinite(value):
            raise TicketError(f"{value!r} is not a finite number", name)

    def _getter(self, name: str) -> Callable[[Ticket, dict[str, Any] | None], Any]:
        if name.startswith("fields."):
            key = name[7:]
            return lambda t, f: t.fields.get(key, MISSING)
        if name.startswith("facts."):
            key = name[6:]
            return lambda t, f: (f or {}).get(key, MISSING)
        if name == "tags":
            return lambda t, f: list(t.tags)
        zone = self.zone
        if name == "local_weekday":
            return lambda t, f: WEEKDAYS[t.created_at.astimezone(zone).weekday()]
        if name == "local_hour":
            return lambda t, f: t.created_at.astimezone(zone).hour
        if name.startswith("in_hours."):
            calendar = self.ruleset.calendars[name[9:]]
            return lambda t, f: calendar.is_open(t.created_at)
        if name.startswith("holiday."):
            calendar = self.ruleset.calendars[name[8:]]
            return lambda t, f: calendar.is_holiday(t.created_at)
        return lambda t, f: getattr(t, name, MISSING)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
