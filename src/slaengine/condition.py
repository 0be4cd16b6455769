"""Rule conditions: parsed from YAML ``when`` blocks, read by the compiler and explain.

A ``when`` block is a mapping; every entry must hold (all are combined with
AND). An entry is either a combinator (``all``, ``any``, ``not``) or a field
name with a test:

- a plain value: equality (``severity: urgent``);
- a list: membership (``channel: [phone, chat]``);
- a mapping of operators, all of which must hold: ``eq``, ``ne``, ``in``,
  ``not_in``, ``lt``, ``le``, ``gt``, ``ge``, ``between: [lo, hi]``
  (inclusive), ``at_least`` / ``at_most`` (by a vocabulary's declared order,
  most severe first), ``matches`` (a Python regular expression, searched),
  ``contains`` (a tag or list element), ``exists`` (true/false).

A test on a field the ticket does not have is false (and ``not`` of it true);
only ``exists: false`` holds for a missing field. Equality is strict about
types (``1`` is not ``"1"`` and ``true`` is not ``1``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

OPERATORS = (
    "eq",
    "ne",
    "in",
    "not_in",
    "lt",
    "le",
    "gt",
    "ge",
    "between",
    "at_least",
    "at_most",
    "matches",
    "contains",
    "exists",
)
NUMERIC_OPS = ("lt", "le", "gt", "ge", "between")
ORDER_OPS = ("at_least", "at_most")


@dataclass(frozen=True)
class Test:
    """One operator applied to one field: ``field op value``."""

    field: str
    op: str
    value: Any
    path: tuple[str | int, ...]  # where in the YAML the test was written

    def describe(self) -> str:
        """A short human reading, e.g. ``severity at_least serious``."""
        return f"{self.field} {self.op} {self.value!r}"


@dataclass(frozen=True)
class All:
    """Every part holds (an empty All always holds)."""

    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    """At least one part holds (an empty AnyOf never holds)."""

    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    """The part does not hold."""

    part: Condition


Condition = Test | All | AnyOf | Not


class ConditionError(ValueError):
    """A ``when`` block is malformed; ``path`` is relative to the block."""

    def __init__(self, message: str, path: tuple[str | int, ...]) -> None:
        super().__init__(message)
        self.path = path


def parse_when(block: Any, path: tuple[str | int, ...] = ()) -> Condition:
    """Parse a ``when`` mapping into a Condition tree (field names not yet checked)."""
    if block is None:
        return All(())
    if not isinstance(block, dict):
        raise ConditionError("conditions must be a mapping of field: test", path)
    parts: list[Condition] = []
    for key, value in block.items():
        here = (*path, key)
        if key in ("all", "any"):
            if not isinstance(value, list):
                raise ConditionError(f"'{key}' takes a list of condition mappings", here)
            subs = tuple(parse_when(item, (*here, i)) for i, item in enumerate(value))
            parts.append(All(subs) if key == "all" else AnyOf(subs))
        elif key == "not":
            parts.append(Not(parse_when(value, here)))
        else:
            parts.extend(_field_tests(str(key), value, here))
    return parts[0] if len(parts) == 1 else All(tuple(parts))


def _field_tests(name: str, value: Any, path: tuple[str | int, ...]) -> list[Condition]:
    if isinstance(value, list):
        return [Test(name, "in", tuple(value), path)]
    if not isinstance(value, dict):
        return [Test(name, "eq", value, path)]
    if not value:
        raise ConditionError(f"no test given for {name}", path)
    tests: list[Condition] = []
    for op, arg in value.items():
        here = (*path, op)
        if op not in OPERATORS:
            raise ConditionError(
                f"unknown operator {op!r}; use one of {', '.join(OPERATORS)}", here
            )
        if op in ("in", "not_in"):
            if not isinstance(arg, list) or not arg:
                raise ConditionError(f"'{op}' takes a non-empty list", here)
            arg = tuple(arg)
        elif op == "between":
            if not (isinstance(arg, list) and len(arg) == 2 and all(_is_number(a) for a in arg)):
                raise ConditionError("'between' takes two numbers: [low, high]", here)
            arg = (arg[0], arg[1])
        elif op in ("lt", "le", "gt", "ge") and not _is_number(arg):
            raise ConditionError(f"'{op}' compares numbers; got {arg!r}", here)
        elif op == "matches":
            try:
                re.compile(str(arg))
            except re.error as exc:
                raise ConditionError(f"bad regular expression {arg!r}: {exc}", here) from None
            arg = str(arg)
        elif op == "exists" and not isinstance(arg, bool):
            raise ConditionError("'exists' takes true or false", here)
        elif isinstance(arg, (dict, list)):
            raise ConditionError(f"'{op}' takes a single value", here)
        tests.append(Test(name, op, arg, here))
    return tests


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def iter_tests(cond: Condition) -> list[Test]:
    """Every Test in a condition tree, in written order."""
    if isinstance(cond, Test):
        return [cond]
    if isinstance(cond, Not):
        return iter_tests(cond.part)
    return [t for part in cond.parts for t in iter_tests(part)]


_MISSING = object()


def strict_equal(a: Any, b: Any) -> bool:
    """Equality that keeps types apart: bools, numbers and strings never equal each other."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    return type(a) is type(b) and a == b


def holds(test: Test, value: Any, rank: dict[str, int] | None = None) -> bool:
    """Whether ``test`` holds for a field ``value`` (``_MISSING`` when absent).

    ``rank`` maps vocabulary values to their order (0 = most severe) for
    ``at_least``/``at_most``.
    """
    op, arg = test.op, test.value
    if op == "exists":
        return (value is not _MISSING and value is not None) == arg
    if value is _MISSING or value is None:
        return False
    if op == "eq":
        return strict_equal(value, arg)
    if op == "ne":
        return not strict_equal(value, arg)
    if op == "in":
        return any(strict_equal(value, a) for a in arg)
    if op == "not_in":
        return not any(strict_equal(value, a) for a in arg)
    if op == "contains":
        return isinstance(value, (list, tuple)) and any(strict_equal(v, arg) for v in value)
    if op == "matches":
        return isinstance(value, str) and re.search(arg, value) is not None
    if op in ORDER_OPS:
        if rank is None or value not in rank or arg not in rank:
            return False
        return rank[value] <= rank[arg] if op == "at_least" else rank[value] >= rank[arg]
    if not _is_number(value):
        return False
    if op == "between":
        return bool(arg[0] <= value <= arg[1])
    return bool({"lt": value < arg, "le": value <= arg, "gt": value > arg, "ge": value >= arg}[op])


MISSING = _MISSING


def first_failure(
    cond: Condition, values: dict[str, Any], ranks: dict[str, dict[str, int]]
) -> tuple[bool, Test | None]:
    """The plain reading of ``cond`` over field ``values``: (holds, a test that decided it).

    When the condition fails, the test is the first one (in written order)
    whose result made it fail; explain shows it to the contract manager.
    """
    if isinstance(cond, Test):
        ok = holds(cond, values.get(cond.field, _MISSING), ranks.get(cond.field))
        return ok, None if ok else cond
    if isinstance(cond, Not):
        ok, _ = first_failure(cond.part, values, ranks)
        return (not ok), None if not ok else _first_test(cond.part)
    if isinstance(cond, All):
        for part in cond.parts:
            ok, failed = first_failure(part, values, ranks)
            if not ok:
                return False, failed
        return True, None
    failures = []
    for part in cond.parts:
        ok, failed = first_failure(part, values, ranks)
        if ok:
            return True, None
        failures.append(failed)
    return False, failures[0] if failures else None


def _first_test(cond: Condition) -> Test | None:
    tests = iter_tests(cond)
    return tests[0] if tests else None
