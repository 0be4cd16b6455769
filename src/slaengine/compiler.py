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
    holds,
    iter_tests,
    strict_equal,
)

#: What a list-valued field holds in a message: present (for ``exists``).
LIST_VALUE = "l:"


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
    whole: dict[str, Condition] = field(default_factory=dict)  # key -> condition too big
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
        msg: dict[str, Any] = {ALWAYS_KEY: 1}
        for name, key in self.keys.items():
            value = values.get(name, MISSING)
            if value is MISSING or value is None:
                continue
            # A list (only read by contains/exists tests) is present, equal to nothing.
            msg[key] = LIST_VALUE if isinstance(value, (list, tuple)) else _tag(value)
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
        for key, cond in self.whole.items():
            msg[key] = "b:1" if evaluate(cond, values, self.vocab_ranks) else "b:0"
        return msg

    def whole_key(self, cond: Condition) -> str:
        key = f"w{len(self.whole)}"
        self.whole[key] = cond
        return key


def evaluate(cond: Condition, values: dict[str, Any], ranks: dict[str, dict[str, int]]) -> bool:
    """``cond`` over field ``values``, in Python (the language's plain reading)."""
    if isinstance(cond, Not):
        return not evaluate(cond.part, values, ranks)
    if isinstance(cond, All):
        return all(evaluate(p, values, ranks) for p in cond.parts)
    if isinstance(cond, AnyOf):
        return any(evaluate(p, values, ranks) for p in cond.parts)
    return holds(cond, values.get(cond.field, MISSING), ranks.get(cond.field))


#: Every message carries ``ALWAYS_KEY: 1``; a condition that always holds is
#: ``{ALWAYS_KEY: 1}`` and one that never holds ``{ALWAYS_KEY: 0}``.
ALWAYS_KEY = "on"


#: durable_rules 2.0.28 refuses a condition with 16 or more ``$and``/``$or``
#: groups (error 113, ERR_EXPRESSION_LIMIT_EXCEEDED); leaves do not count.
MAX_GROUPS = 15


def compile_condition(cond: Condition, enc: Encoding) -> dict[str, Any]:
    """The durable_rules condition for ``cond``.

    Empty ``all`` (always true) and empty ``any`` (never true) are folded away
    first, since durable_rules gives wrong answers for empty ``$and``/``$or``
    lists nested in others, and nested groups of the same kind are merged. A
    condition still too deeply grouped for durable_rules is evaluated in
    Python into a key of its own, which the rule then tests.
    """
    folded = _fold(cond, enc, negate=False)
    if isinstance(folded, bool):
        return {ALWAYS_KEY: int(folded)}
    if _groups(folded) > MAX_GROUPS:
        return {enc.whole_key(cond): "b:1"}
    return folded


def _groups(compiled: Any) -> int:
    if isinstance(compiled, dict):
        own = sum(1 for key in compiled if key in ("$and", "$or"))
        return own + sum(_groups(value) for value in compiled.values())
    if isinstance(compiled, list):
        return sum(_groups(item) for item in compiled)
    return 0


def _fold(cond: Condition, enc: Encoding, negate: bool) -> dict[str, Any] | bool:
    """The condition (or its negation), or True/False when that is constant."""
    if isinstance(cond, Not):
        return _fold(cond.part, enc, not negate)
    if not isinstance(cond, (All, AnyOf)):
        return _compile_test(cond, enc, negate)
    conjunctive = isinstance(cond, All) != negate
    parts = []
    for part in cond.parts:
        folded = _fold(part, enc, negate)
        if folded is (not conjunctive):  # False in an and, True in an or
            return folded
        if isinstance(folded, bool):
            continue
        same = folded.get("$and" if conjunctive else "$or")
        if same is not None and len(folded) == 1:
            parts.extend(same)  # (a and (b and c)) is (a and b and c)
        else:
            parts.append(folded)
    if not parts:
        return conjunctive  # and of nothing holds; or of nothing does not
    if len(parts) == 1:
        return parts[0]
    return {"$and" if conjunctive else "$or": parts}


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
