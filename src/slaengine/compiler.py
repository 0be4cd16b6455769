"""Compile a ruleset's conditions into durable_rules message conditions.

The compiler decides the message a ticket becomes (its *encoding*) and the
durable_rules condition of every rule over that message:

- every field a rule reads gets a key of its own (``k3_fields_region``):
  never ``id``/``sid``, which durable_rules reserves;
- strings and booleans are tagged (``"s:urgent"``, ``"b:1"``) and numbers
  stay numbers, because durable_rules compares loosely (``1`` equals
  ``"1"`` and ``true``): tagging makes equality as strict as the language;
- ordered tests (``at_least``) read a rank key holding the vocabulary
  position; ``matches`` and ``contains`` are computed in Python (durable's
  regular expressions are not Python's) into boolean keys;
- ``not`` is pushed down to the tests (durable_rules has no ``$not``); a
  negated test also holds when its field is missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from slaengine.condition import (
    MISSING,
    All,
    AnyOf,
    Condition,
    Not,
    Test,
    iter_tests,
    strict_equal,
)


def _tag(value: Any) -> Any:
    if isinstance(value, bool):
        return "b:1" if value else "b:0"
    if isinstance(value, (int, float)):
        return value
    return "s:" + str(value)


@dataclass
class Encoding:
    """How a ticket's field values become one durable_rules message."""

    keys: dict[str, str] = field(default_factory=dict)  # field -> value key
    ranks: dict[str, str] = field(default_factory=dict)  # field -> rank key
    computed: dict[tuple[str, str, Any], str] = field(default_factory=dict)  # (field, op, arg)
    vocab_ranks: dict[str, dict[str, int]] = field(default_factory=dict)

    def key(self, name: str) -> str:
        if name not in self.keys:
            safe = re.sub(r"[^A-Za-z0-9]", "_", name)
            self.keys[name] = f"k{len(self.keys)}_{safe}"
        return self.keys[name]

    def rank_key(self, name: str) -> str:
        if name not in self.ranks:
            self.ranks[name] = f"r{len(self.ranks)}_" + re.sub(r"[^A-Za-z0-9]", "_", name)
        return self.ranks[name]

    def computed_key(self, test: Test) -> str:
        ident = (test.field, test.op, test.value)
        if ident not in self.computed:
            self.computed[ident] = f"c{len(self.computed)}"
        return self.computed[ident]

    def message(self, values: dict[str, Any]) -> dict[str, Any]:
        """The durable_rules message for field ``values`` (absent fields left out)."""
        msg: dict[str, Any] = {}
        for name, key in self.keys.items():
            value = values.get(name, MISSING)
            if value is not MISSING and value is not None and not isinstance(value, (list, tuple)):
                msg[key] = _tag(value)
        for name, key in self.ranks.items():
            value = values.get(name)
            rank = self.vocab_ranks.get(name, {}).get(value) if isinstance(value, str) else None
            if rank is not None:
                msg[key] = rank
        for (name, op, arg), key in self.computed.items():
            value = values.get(name, MISSING)
            if op == "matches":
                hit = isinstance(value, str) and re.search(arg, value) is not None
            else:  # contains
                hit = isinstance(value, (list, tuple)) and any(strict_equal(v, arg) for v in value)
            msg[key] = "b:1" if hit else "b:0"
        return msg


def compile_condition(cond: Condition, enc: Encoding, negate: bool = False) -> dict[str, Any]:
    """The durable_rules condition for ``cond`` (or for its negation)."""
    if isinstance(cond, Not):
        return compile_condition(cond.part, enc, not negate)
    if isinstance(cond, (All, AnyOf)):
        parts = [compile_condition(p, enc, negate) for p in cond.parts]
        conjunctive = isinstance(cond, All) != negate
        return {"$and" if conjunctive else "$or": parts}
    return _compile_test(cond, enc, negate)


def _compile_test(test: Test, enc: Encoding, negate: bool) -> dict[str, Any]:
    op, arg = test.op, test.value
    if op in ("matches", "contains"):
        return {enc.computed_key(test): "b:0" if negate else "b:1"}
    if op in ("at_least", "at_most"):
        key = enc.rank_key(test.field)
        rank = enc.vocab_ranks[test.field][arg]
        positive_op, negative_op = ("$lte", "$gt") if op == "at_least" else ("$gte", "$lt")
        if not negate:
            return {positive_op: {key: rank}}
        return {"$or": [{negative_op: {key: rank}}, {"$nex": {key: 1}}]}
    key = enc.key(test.field)
    if op == "exists":
        return {"$ex" if arg != negate else "$nex": {key: 1}}
    positive, negative = _PAIRS[op](key, arg)
    if not negate:
        return positive
    return {"$or": [negative, {"$nex": {key: 1}}]}


def _eq(key: str, value: Any) -> dict[str, Any]:
    return {key: _tag(value)}


def _ne(key: str, value: Any) -> dict[str, Any]:
    return {"$neq": {key: _tag(value)}}


# op -> (key, arg) -> (condition when present, its negation when present)
_PAIRS: dict[str, Any] = {
    "eq": lambda k, a: (_eq(k, a), _ne(k, a)),
    "ne": lambda k, a: (_ne(k, a), _eq(k, a)),
    "in": lambda k, a: ({"$or": [_eq(k, v) for v in a]}, {"$and": [_ne(k, v) for v in a]}),
    "not_in": lambda k, a: ({"$and": [_ne(k, v) for v in a]}, {"$or": [_eq(k, v) for v in a]}),
    "lt": lambda k, a: ({"$lt": {k: a}}, {"$gte": {k: a}}),
    "le": lambda k, a: ({"$lte": {k: a}}, {"$gt": {k: a}}),
    "gt": lambda k, a: ({"$gt": {k: a}}, {"$lte": {k: a}}),
    "ge": lambda k, a: ({"$gte": {k: a}}, {"$lt": {k: a}}),
    "between": lambda k, a: (
        {"$and": [{"$gte": {k: a[0]}}, {"$lte": {k: a[1]}}]},
        {"$or": [{"$lt": {k: a[0]}}, {"$gt": {k: a[1]}}]},
    ),
}


def encoding_for(conditions: list[Condition], vocab_ranks: dict[str, dict[str, int]]) -> Encoding:
    """An Encoding with a key for every field the conditions read."""
    enc = Encoding(vocab_ranks=vocab_ranks)
    for cond in conditions:
        for test in iter_tests(cond):
            if test.op in ("matches", "contains"):
                enc.computed_key(test)
            elif test.op in ("at_least", "at_most"):
                enc.rank_key(test.field)
            else:
                enc.key(test.field)
    return enc
