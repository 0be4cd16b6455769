"""Differential test: the durable_rules engine against a plain reading of the rule language.

Hypothesis generates small random rulesets (1-3 tables, first/collect, with and
without defaults, nested all/any/not conditions over string, vocabulary,
numeric, boolean, mixed-type, regex, list and derived-time fields) and tickets.
Each ruleset is compiled once into an ``Engine`` and judged on many tickets.
The expected decision comes from ``oracle_decide`` below, written from the
documented semantics only (slaengine.condition's module docstring and the
ruleset schema), not from the compiler: it checks every case against
``matched_rules``, ``priority``, ``tags`` and NoRuleMatched / TicketError.

Explicit examples at the end pin the tricky semantics (``not`` over a missing
field, strict equality, vocabulary order, regex search, empty any/all) and the
disagreements this test found, as regression cases.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from slaengine.engine import Engine
from slaengine.errors import NoRuleMatched, TicketError
from slaengine.library import RulesetLibrary
from slaengine.ruleset import parse_ruleset
from slaengine.yamlsource import read_yaml

# --------------------------------------------------------------------------- language universe

SEVERITY = ["urgent", "serious", "general", "consultation"]
TIER = ["gold", "silver", "bronze"]
CHANNEL = ["phone", "email", "web", "chat"]
PRIORITY = ["P1", "P2", "P3", "P4"]
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
VOCABS = {"severity": SEVERITY, "tier": TIER, "channel": CHANNEL}
OUT_TAGS = ["a", "b", "c", "d", "e"]
TICKET_TAGS = ["t1", "t2", "vip", "x"]
CATEGORIES = ["hardware", "software", "network", "", "1", "Net"]
STATUSES = ["new", "open", "resolved", "pending_customer"]
STRINGS = ["", "a", "abc", "cab", "xyz", "S1", "ab12", "b", "aaa", "new", "1", "true", "a.c"]
REGEXES = [
    "a",
    "^a",
    "c$",
    "b",
    "^$",
    "a.c",
    "x|y",
    "[0-9]",
    "^(ab)+",
    "S",
    r"\d\d",
    "^new$",
    "er",
    "^u",
    "al$",
    "o",
    "^[a-c]+$",
    "1",
]
ZONES = ["UTC", "Asia/Shanghai", "America/New_York", "Asia/Kolkata"]
OFFSETS = [timedelta(0), timedelta(hours=8), timedelta(hours=-5), timedelta(hours=5, minutes=30)]
MISSING = object()  # a field the ticket does not carry at all

# Mixed-type literals to probe strict equality: 1 == 1.0, but 1 != "1", true != 1.
MIXED = [1, 1.0, 0, "1", True, False, "a", 2.5, None, "true"]

# Field kinds: which operators and literals the generator uses for each field.
FIELDS = [
    "severity",
    "tier",
    "channel",
    "category",
    "status",
    "tags",
    "fields.n",
    "fields.flag",
    "fields.s",
    "fields.v",
    "fields.l",
    "local_hour",
    "local_weekday",
]
KIND = {
    "severity": "vocab",
    "tier": "vocab",
    "channel": "vocab",
    "category": "text",
    "status": "text",
    "fields.s": "text",
    "local_weekday": "weekday",
    "fields.n": "number",
    "local_hour": "number",
    "fields.flag": "flag",
    "fields.v": "mixed",
    "tags": "list",
    "fields.l": "list",
}
NUMERIC_OPS = ("lt", "le", "gt", "ge", "between")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --------------------------------------------------------------------------- the oracle


def strict_eq(a: Any, b: Any) -> bool:
    """Equality strict about types: numbers equal numbers (1 == 1.0), bools bools, text text."""
    if a is None or b is None:
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return a == b
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    return False


def lookup(ticket: dict[str, Any], field: str, tz: str) -> Any:
    """The value a rule sees for ``field``, or MISSING (null counts as missing)."""
    if field in ("local_hour", "local_weekday"):
        local = datetime.fromisoformat(ticket["created_at"]).astimezone(ZoneInfo(tz))
        return local.hour if field == "local_hour" else WEEKDAYS[local.weekday()]
    if field.startswith("fields."):
        value = ticket.get("fields", {}).get(field.split(".", 1)[1], MISSING)
    elif field == "status":
        value = ticket.get("status", "new")
    elif field == "tags":
        value = ticket.get("tags", [])
    else:
        value = ticket.get(field, MISSING)
    return MISSING if value is None else value


def op_holds(value: Any, op: str, arg: Any, field: str) -> bool:
    if value is MISSING:
        return op == "exists" and arg is False
    if op == "exists":
        return arg is True
    if op == "eq":
        return strict_eq(value, arg)
    if op == "ne":
        return not strict_eq(value, arg)
    if op == "in":
        return any(strict_eq(value, a) for a in arg)
    if op == "not_in":
        return not any(strict_eq(value, a) for a in arg)
    if op == "lt":
        return value < arg
    if op == "le":
        return value <= arg
    if op == "gt":
        return value > arg
    if op == "ge":
        return value >= arg
    if op == "between":
        return arg[0] <= value <= arg[1]
    if op in ("at_least", "at_most"):
        order = VOCABS[field]
        rank, other = order.index(value), order.index(arg)
        return rank <= other if op == "at_least" else rank >= other
    if op == "matches":
        return isinstance(value, str) and re.search(arg, value) is not None
    if op == "contains":
        return isinstance(value, list) and any(strict_eq(e, arg) for e in value)
    raise AssertionError(f"oracle: unknown operator {op}")


def field_holds(value: Any, spec: Any, field: str) -> bool:
    if isinstance(spec, list):
        return op_holds(value, "in", spec, field)
    if isinstance(spec, dict):
        return all(op_holds(value, op, arg, field) for op, arg in spec.items())
    return op_holds(value, "eq", spec, field)


def when_holds(block: Any, ticket: dict[str, Any], tz: str) -> bool:
    """A ``when`` mapping: every entry holds (empty/absent: always)."""
    if block is None:
        return True
    for key, spec in block.items():
        if key == "all":
            ok = all(when_holds(b, ticket, tz) for b in spec)
        elif key == "any":
            ok = any(when_holds(b, ticket, tz) for b in spec)
        elif key == "not":
            ok = not when_holds(spec, ticket, tz)
        else:
            ok = field_holds(lookup(ticket, key, tz), spec, key)
        if not ok:
            return False
    return True


def numeric_fields(doc: dict[str, Any]) -> set[str]:
    """Fields some rule tests with lt/le/gt/ge/between: a present value must be a number."""
    found: set[str] = set()

    def walk(block: Any) -> None:
        if not block:
            return
        for key, spec in block.items():
            if key in ("all", "any"):
                for b in spec:
                    walk(b)
            elif key == "not":
                walk(spec)
            elif isinstance(spec, dict) and any(op in NUMERIC_OPS for op in spec):
                found.add(key)

    for table in doc["tables"]:
        for rule in table["rules"]:
            walk(rule.get("when"))
    return found


def oracle_decide(doc: dict[str, Any], ticket: dict[str, Any]) -> dict[str, Any]:
    """What the documented semantics decide: matched rules, priority, tags, or the error."""
    tz = doc["timezone"]
    for field in numeric_fields(doc):
        value = lookup(ticket, field, tz)
        if value is not MISSING and not _is_number(value):
            return {"error": "TicketError"}
    matched: list[str] = []
    priority = None
    tags: list[str] = []

    def apply(outcome: dict[str, Any]) -> None:
        nonlocal priority
        if outcome.get("priority") is not None:
            priority = outcome["priority"]
        for tag in outcome.get("tags", []):
            if tag not in tags:
                tags.append(tag)

    for table in doc["tables"]:
        hits = [r for r in table["rules"] if when_holds(r.get("when"), ticket, tz)]
        if table["hit"] == "first":
            hits = hits[:1]
        if hits:
            for rule in hits:
                matched.append(rule["name"])
                apply(rule["then"])
        elif "default" in table:
            apply(table["default"])
        elif table["hit"] == "first":
            return {"error": "NoRuleMatched"}
    return {"matched_rules": matched, "priority": priority, "tags": tags}


# --------------------------------------------------------------------------- the engine side


_names = itertools.count()


def compile_doc(doc: dict[str, Any]) -> tuple[str, Any]:
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    located = read_yaml(text, "gen.yaml")
    # The YAML must read back as exactly what the oracle judges.
    assert located.data["tables"] == doc["tables"], text
    return text, parse_ruleset(located)


def engine_decide(engine: Engine, name: str, ticket: dict[str, Any]) -> dict[str, Any]:
    try:
        d = engine.evaluate(ticket, ruleset=name)
    except NoRuleMatched:
        return {"error": "NoRuleMatched"}
    except TicketError:
        return {"error": "TicketError"}
    except Exception as exc:  # anything else is a disagreement, reported as such
        return {"error": f"evaluate() raised {type(exc).__name__}: {exc}"}
    return {"matched_rules": list(d.matched_rules), "priority": d.priority, "tags": list(d.tags)}


def decide_once(doc: dict[str, Any], ticket: dict[str, Any]) -> dict[str, Any]:
    """Compile ``doc`` under a fresh name and decide one ticket."""
    doc = {**doc, "name": f"red-{next(_names)}"}
    _, compiled = compile_doc(doc)
    try:
        engine = Engine(RulesetLibrary([compiled]))
    except Exception as exc:  # a valid ruleset must compile
        return {"error": f"Engine() raised {type(exc).__name__}: {exc}"}
    with engine:
        return engine_decide(engine, doc["name"], ticket)


def _smaller_blocks(block: dict[str, Any]) -> list[dict[str, Any]]:
    """Every when block one step simpler than ``block``."""
    out = []
    for key, spec in block.items():
        rest = {k: v for k, v in block.items() if k != key}
        out.append(rest)
        if key == "not":
            out += [{**rest, "not": s} for s in _smaller_blocks(spec)]
            out.append({**rest, **{k: v for k, v in spec.items() if k not in rest}})
        elif key in ("all", "any"):
            for i, sub in enumerate(spec):
                out.append({**rest, key: spec[:i] + spec[i + 1 :]})
                out += [{**rest, key: spec[:i] + [s] + spec[i + 1 :]} for s in _smaller_blocks(sub)]
                out.append({**rest, **{k: v for k, v in sub.items() if k not in rest}})
        elif isinstance(spec, dict) and len(spec) > 1:
            out += [{**rest, key: {op: arg}} for op, arg in spec.items()]
        elif isinstance(spec, list) and len(spec) > 1:
            out += [{**rest, key: spec[:i] + spec[i + 1 :]} for i in range(len(spec))]
    return out


def _smaller_docs(doc: dict[str, Any]) -> list[dict[str, Any]]:
    tables = doc["tables"]
    out = []
    for ti, table in enumerate(tables):

        def with_table(new: dict[str, Any] | None, ti: int = ti) -> dict[str, Any]:
            rest = tables[:ti] + ([new] if new else []) + tables[ti + 1 :]
            return {**doc, "tables": rest}

        if len(tables) > 1:
            out.append(with_table(None))
        if "default" in table:
            out.append(with_table({k: v for k, v in table.items() if k != "default"}))
        rules = table["rules"]
        for ri, rule in enumerate(rules):
            if len(rules) > 1:
                out.append(with_table({**table, "rules": rules[:ri] + rules[ri + 1 :]}))
            for block in _smaller_blocks(rule.get("when") or {}):
                new_rule = {**rule, "when": block}
                out.append(
                    with_table({**table, "rules": rules[:ri] + [new_rule] + rules[ri + 1 :]})
                )
    return out


def _smaller_tickets(ticket: dict[str, Any]) -> list[dict[str, Any]]:
    out = [
        {k: v for k, v in ticket.items() if k != key}
        for key in ticket
        if key not in ("id", "created_at", "severity")
    ]
    fields = ticket.get("fields", {})
    out += [{**ticket, "fields": {k: v for k, v in fields.items() if k != key}} for key in fields]
    return out


def disagrees(doc: dict[str, Any], ticket: dict[str, Any]) -> bool:
    return decide_once(doc, ticket) != oracle_decide(doc, ticket)


def fails_to_compile(doc: dict[str, Any], ticket: dict[str, Any]) -> bool:
    return str(decide_once(doc, ticket).get("error", "")).startswith("Engine()")


def reduce_case(
    doc: dict[str, Any], ticket: dict[str, Any], bad: Any = disagrees
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Greedily simplify a failing (ruleset, ticket) while ``bad`` still holds of it."""
    budget = 400
    progress = True
    while progress and budget > 0:
        progress = False
        candidates = [(d, ticket) for d in _smaller_docs(doc)]
        candidates += [(doc, t) for t in _smaller_tickets(ticket)]
        for cand_doc, cand_ticket in candidates:
            budget -= 1
            if budget <= 0:
                break
            if bad(cand_doc, cand_ticket):
                doc, ticket, progress = cand_doc, cand_ticket, True
                break
    return doc, ticket


def base_doc(name: str, tables: list[dict[str, Any]], tz: str = "UTC") -> dict[str, Any]:
    return {
        "name": name,
        "version": "1.0.0",
        "effective_from": date(2020, 1, 1),
        "timezone": tz,
        "vocabularies": {
            "severity": SEVERITY,
            "tier": {"values": TIER, "required": False},
            "channel": {"values": CHANNEL, "required": False},
            "priority": PRIORITY,
        },
        "calendars": {"clock": "always"},
        "metrics": {"resolution": {"stop": ["resolved"]}},
        "tables": tables,
    }


def mismatch(text: str, ticket: dict[str, Any], expected: Any, actual: Any) -> str:
    return (
        f"engine disagrees with the documented semantics\n--- ruleset ---\n{text}"
        f"--- ticket ---\n{json.dumps(ticket, sort_keys=True)}\n"
        f"--- expected ---\n{expected}\n--- actual ---\n{actual}"
    )


# --------------------------------------------------------------------------- strategies

numbers = st.one_of(
    st.integers(-5, 30),
    st.sampled_from([0.5, 1.0, 2.5, -1.5, 7.25, 23.0, 1e-9, 1e20, 9007199254740993]),
)


def literal(kind: str, field: str) -> st.SearchStrategy[Any]:
    """A value written in a rule for an equality/membership test on ``field``."""
    if kind == "vocab":
        return st.sampled_from(VOCABS[field])
    if kind == "weekday":
        return st.sampled_from(WEEKDAYS)
    if kind == "text":
        return st.one_of(st.sampled_from(STRINGS + STATUSES + CATEGORIES), st.sampled_from(MIXED))
    if kind == "number":
        return st.one_of(numbers, numbers, st.sampled_from(MIXED))
    if kind in ("flag", "mixed"):
        return st.sampled_from(MIXED)
    if kind == "list":
        return st.sampled_from(TICKET_TAGS + ["a", "1"])
    raise AssertionError(kind)


def operator_test(field: str) -> st.SearchStrategy[tuple[str, Any]]:
    """One ``op: argument`` pair suited to ``field``'s kind."""
    kind = KIND[field]
    lit = literal(kind, field)
    if kind == "list":
        if field == "tags":  # exists on tags: see test_tags_exists_regression
            return st.tuples(st.just("contains"), lit)
        return st.one_of(
            st.tuples(st.just("contains"), lit), st.tuples(st.just("exists"), st.booleans())
        )
    ops: list[st.SearchStrategy[tuple[str, Any]]] = [
        st.tuples(st.just("exists"), st.booleans()),
        st.tuples(st.sampled_from(["eq", "ne"]), lit),
        st.tuples(st.sampled_from(["in", "not_in"]), st.lists(lit, min_size=1, max_size=3)),
    ]
    if kind == "vocab":
        ops.append(st.tuples(st.sampled_from(["at_least", "at_most"]), lit))
    if kind in ("vocab", "text"):
        ops.append(st.tuples(st.just("matches"), st.sampled_from(REGEXES)))
    if kind == "number":
        ops.append(st.tuples(st.sampled_from(["lt", "le", "gt", "ge"]), numbers))
        ops.append(st.tuples(st.just("between"), st.lists(numbers, min_size=2, max_size=2)))
    if kind == "mixed":
        # Now and then a numeric test on the mixed field: its non-numbers must then be refused.
        ops = ops * 4 + [st.tuples(st.sampled_from(["gt", "le"]), numbers)]
    return st.one_of(ops)


def field_spec(field: str) -> st.SearchStrategy[Any]:
    """The right-hand side of ``field: ...`` in a when block."""
    kind = KIND[field]
    if kind == "list":
        return operator_test(field).map(lambda t: {t[0]: t[1]})
    lit = literal(kind, field)
    return st.one_of(
        lit.filter(lambda v: v is not None),  # shorthand: equality
        st.lists(lit, min_size=1, max_size=3),  # shorthand: membership
        st.lists(operator_test(field), min_size=1, max_size=2).map(dict),
    )


def when_block(fields: list[str], depth: int) -> st.SearchStrategy[dict[str, Any]]:
    entry: st.SearchStrategy[tuple[str, Any]] = st.sampled_from(fields).flatmap(
        lambda f: field_spec(f).map(lambda spec: (f, spec))
    )
    if depth > 0:
        sub = when_block(fields, depth - 1)
        entry = st.one_of(
            entry,
            entry,
            st.tuples(st.sampled_from(["all", "any"]), st.lists(sub, max_size=3)),
            st.tuples(st.just("not"), sub),
        )
    return st.lists(entry, max_size=3).map(lambda items: dict(reversed(items)))


def outcome() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {},
        optional={
            "priority": st.sampled_from(PRIORITY),
            "tags": st.lists(st.sampled_from(OUT_TAGS), min_size=1, max_size=3),
        },
    )


@st.composite
def rulesets(draw: st.DrawFn) -> dict[str, Any]:
    fields = draw(st.lists(st.sampled_from(FIELDS), min_size=3, max_size=6, unique=True))
    tables = []
    for ti in range(draw(st.integers(1, 3))):
        # A strict table has no catch-all rule and no default: most tickets
        # then match none of its rules (NoRuleMatched), whatever the draw.
        strict = draw(st.booleans())
        rules = []
        for ri in range(draw(st.integers(1, 12))):
            # depth <= 3 with the top
            whens = when_block(fields, 2)
            when = draw(whens.filter(bool) if strict else st.one_of(st.none(), whens))
            rule: dict[str, Any] = {"name": f"r{ti}-{ri}"}
            if when is not None:
                rule["when"] = when
            rule["then"] = draw(outcome())
            rules.append(rule)
        table: dict[str, Any] = {
            "name": f"t{ti}",
            "hit": draw(st.sampled_from(["first", "collect"])),
            "rules": rules,
        }
        if not strict and draw(st.booleans()):
            table["default"] = draw(outcome())
        tables.append(table)
    return base_doc(f"gen-{next(_names)}", tables, tz=draw(st.sampled_from(ZONES)))


def maybe(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A ticket value, or MISSING (key absent), or null."""
    return st.one_of(values, values, st.just(MISSING), st.none())


@st.composite
def tickets(draw: st.DrawFn) -> dict[str, Any]:
    moment = draw(st.datetimes(datetime(2021, 1, 1), datetime(2030, 12, 31)))
    offset = timezone(draw(st.sampled_from(OFFSETS)))
    ticket: dict[str, Any] = {
        "id": "T-1",
        "created_at": moment.replace(tzinfo=offset).isoformat(),
        "severity": draw(st.sampled_from(SEVERITY)),
    }
    for key, values in (
        ("tier", st.sampled_from(TIER)),
        ("channel", st.sampled_from(CHANNEL)),
        ("category", st.sampled_from(CATEGORIES)),
    ):
        v = draw(maybe(values))
        if v is not MISSING:
            ticket[key] = v
    status = draw(st.one_of(st.just(MISSING), st.sampled_from(STATUSES)))
    if status is not MISSING:
        ticket["status"] = status
    if draw(st.booleans()):
        ticket["tags"] = draw(st.lists(st.sampled_from(TICKET_TAGS), max_size=3))
    fields: dict[str, Any] = {}
    for key, values in (
        ("n", numbers),
        ("flag", st.booleans()),
        ("s", st.sampled_from(STRINGS)),
        ("v", st.sampled_from(MIXED)),
        ("l", st.lists(st.sampled_from(TICKET_TAGS + ["a", "1"]), max_size=3)),
    ):
        v = draw(maybe(values))
        if v is not MISSING:
            fields[key] = v
    if fields or draw(st.booleans()):
        ticket["fields"] = fields
    return ticket


# --------------------------------------------------------------------------- the differential test

TICKETS_PER_RULESET = 30
MIN_CASES = 3000

#: Run first, whatever the generator draws: a ticket no rule matches and a
#: ticket whose text a numeric test refuses, beside one that matches.
#: (Derandomized generation is not the same in every process: Hypothesis
#: mixes the constants of the project's loaded modules into what it draws,
#: so the outcome mix of the generated cases changes with the modules the
#: tests before this one imported, and with edits to any of them.)
OUTCOMES_DOC = base_doc(
    "outcomes",
    [
        {
            "name": "t0",
            "hit": "first",
            "rules": [
                {"name": "urgent", "when": {"severity": "urgent"}, "then": {"priority": "P1"}},
                {"name": "big", "when": {"fields.n": {"gt": 10}}, "then": {"tags": ["x"]}},
            ],
        }
    ],
)
OUTCOMES_BATCH = [
    {"id": "T-1", "created_at": "2026-03-04T10:30:00+00:00", "severity": "urgent"},
    {"id": "T-1", "created_at": "2026-03-04T10:30:00+00:00", "severity": "general"},
    {
        "id": "T-1",
        "created_at": "2026-03-04T10:30:00+00:00",
        "severity": "general",
        "fields": {"n": "eleven"},
    },
]


def test_engine_agrees_with_documented_semantics() -> None:
    stats = {"rulesets": 0, "cases": 0, "no_rule": 0, "ticket_error": 0, "matched": 0}
    started = time.monotonic()

    # Derandomized: the same 3,000 cases every run, so CI is reproducible and
    # the outcome mix asserted below holds (a random run now and then drew
    # only matching tickets). Set derandomize=False locally to explore.
    @settings(
        max_examples=100,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        phases=[Phase.explicit, Phase.generate],  # reduce_case shrinks instead
    )
    @given(
        doc=rulesets(),
        batch=st.lists(tickets(), min_size=TICKETS_PER_RULESET, max_size=TICKETS_PER_RULESET),
    )
    @example(doc=OUTCOMES_DOC, batch=OUTCOMES_BATCH)
    def run(doc: dict[str, Any], batch: list[dict[str, Any]]) -> None:
        text, compiled = compile_doc(doc)
        stats["rulesets"] += 1
        try:
            engine = Engine(RulesetLibrary([compiled]))
        except Exception as exc:
            small_doc, _ = reduce_case(doc, batch[0], fails_to_compile)
            small_text, _ = compile_doc(small_doc)
            pytest.fail(
                f"a valid ruleset does not compile: {type(exc).__name__}: {exc}\n"
                f"--- reduced ruleset ---\n{small_text}\n"
                f"{decide_once(small_doc, batch[0])}\n(reduced from\n{text})"
            )
        with engine:
            for ticket in batch:
                expected = oracle_decide(doc, ticket)
                actual = engine_decide(engine, doc["name"], ticket)
                if actual != expected:
                    small_doc, small_ticket = reduce_case(doc, ticket)
                    small_text, _ = compile_doc(small_doc)
                    pytest.fail(
                        mismatch(
                            small_text,
                            small_ticket,
                            oracle_decide(small_doc, small_ticket),
                            decide_once(small_doc, small_ticket),
                        )
                        + f"\n(reduced from ruleset\n{text})"
                    )
                stats["cases"] += 1
                if "error" not in expected:
                    stats["matched"] += bool(expected["matched_rules"])
                elif expected["error"] == "NoRuleMatched":
                    stats["no_rule"] += 1
                else:
                    stats["ticket_error"] += 1

    run()
    elapsed = time.monotonic() - started
    print(f"differential: {stats} in {elapsed:.1f}s")
    assert stats["cases"] >= MIN_CASES, stats
    # Every outcome kind is exercised (a refused ticket at least by the
    # explicit example), matches and NoRuleMatched in good numbers.
    assert stats["matched"] > stats["cases"] // 10, stats
    assert stats["no_rule"] > stats["cases"] // 100 and stats["ticket_error"] > 0, stats


# --------------------------------------------------------------------------- explicit examples


def one_rule(when: Any, ticket_extra: dict[str, Any], *, hit: str = "first") -> dict[str, Any]:
    """Decide ``ticket_extra`` against a single rule; engine and oracle must agree."""
    rule: dict[str, Any] = {"name": "r", "then": {"priority": "P1", "tags": ["hit"]}}
    if when is not None:
        rule["when"] = when
    table = {"name": "t", "hit": hit, "rules": [rule], "default": {"tags": ["default"]}}
    doc = base_doc(f"ex-{next(_names)}", [table])
    ticket = {
        "id": "T-1",
        "created_at": "2026-03-04T10:30:00+00:00",
        "severity": "serious",
        **ticket_extra,
    }
    text, compiled = compile_doc(doc)
    with Engine(RulesetLibrary([compiled])) as engine:
        actual = engine_decide(engine, doc["name"], ticket)
    expected = oracle_decide(doc, ticket)
    assert actual == expected, mismatch(text, ticket, expected, actual)
    return actual


def matched(when: Any, **ticket_extra: Any) -> bool:
    return one_rule(when, ticket_extra)["matched_rules"] == ["r"]


def test_not_over_a_missing_field_holds() -> None:
    assert matched({"not": {"tier": "gold"}})  # no tier at all
    assert not matched({"tier": "gold"})
    assert not matched({"tier": {"ne": "gold"}})  # a test on a missing field is false...
    assert not matched({"tier": {"not_in": ["gold"]}})
    assert matched({"tier": {"exists": False}})  # ...only exists: false holds
    assert not matched({"tier": {"exists": True}})
    assert matched({"not": {"fields.s": {"matches": "a"}}}, fields={"s": None})  # null = missing
    assert matched({"not": {"fields.n": {"gt": 1}}}, fields={})
    assert matched({"tier": {"ne": "gold"}}, tier="silver")


def test_equality_is_strict_about_types() -> None:
    assert matched({"fields.v": 1}, fields={"v": 1.0})
    assert matched({"fields.v": 1.0}, fields={"v": 1})
    assert not matched({"fields.v": "1"}, fields={"v": 1})
    assert not matched({"fields.v": True}, fields={"v": 1})
    assert not matched({"fields.v": {"in": [True, "1"]}}, fields={"v": 1})
    assert matched({"fields.v": {"ne": "1"}}, fields={"v": 1})
    assert matched({"fields.flag": True}, fields={"flag": True})
    assert not matched({"fields.flag": "true"}, fields={"flag": True})


def test_equality_with_a_number_literal_against_text_or_bool_regression() -> None:
    """Found by the differential test: an equality/membership test with a number literal
    makes the engine demand a number, so a text or true/false value raises TicketError
    instead of simply not being equal (the docs: ``1`` is not ``"1"``, ``true`` is not ``1``;
    only lt/le/gt/ge/between compare numbers)."""
    assert not matched({"fields.v": 1}, fields={"v": "1"})
    assert not matched({"fields.v": 1}, fields={"v": True})
    assert not matched({"fields.v": {"in": [1, 2]}}, fields={"v": "a"})
    assert matched({"fields.v": {"ne": 1}}, fields={"v": "x"})
    assert not matched({"category": 1}, category="1")


def test_at_least_and_at_most_follow_vocabulary_order() -> None:
    # severity order: urgent (most severe), serious, general, consultation
    assert matched({"severity": {"at_least": "serious"}}, severity="urgent")
    assert matched({"severity": {"at_least": "serious"}}, severity="serious")
    assert not matched({"severity": {"at_least": "serious"}}, severity="general")
    assert not matched({"severity": {"at_most": "serious"}}, severity="urgent")
    assert matched({"severity": {"at_most": "serious"}}, severity="consultation")
    assert matched({"tier": {"at_least": "silver", "at_most": "silver"}}, tier="silver")
    assert not matched({"tier": {"at_least": "silver"}})  # missing tier


def test_matches_searches_rather_than_full_match() -> None:
    assert matched({"fields.s": {"matches": "b"}}, fields={"s": "abc"})
    assert not matched({"fields.s": {"matches": "^b"}}, fields={"s": "abc"})
    assert matched({"severity": {"matches": "ous"}}, severity="serious")
    assert not matched({"fields.s": {"matches": "B"}}, fields={"s": "abc"})  # case-sensitive


def test_empty_all_holds_and_empty_any_does_not() -> None:
    assert matched({"all": []})
    assert not matched({"any": []})
    assert not matched({"not": {}})
    assert matched(None)
    assert matched({})
    assert matched({"any": [{"severity": "urgent"}, {"all": []}]})


def test_between_is_inclusive_and_numbers_compare_across_int_and_float() -> None:
    assert matched({"fields.n": {"between": [1, 2]}}, fields={"n": 1})
    assert matched({"fields.n": {"between": [1, 2]}}, fields={"n": 2.0})
    assert not matched({"fields.n": {"between": [1, 2]}}, fields={"n": 2.0001})
    assert matched({"local_hour": {"between": [10, 10]}})  # created 10:30 UTC


def test_collect_reports_each_matched_rule_once_regression() -> None:
    """Found by the differential test: in a collect table a rule whose condition holds
    in more than one way (always-true, any with two true branches, a not) is listed
    in matched_rules more than once."""
    assert one_rule({}, {}, hit="collect")["matched_rules"] == ["r"]
    assert one_rule({"not": {"severity": "urgent"}}, {}, hit="collect")["matched_rules"] == ["r"]
    assert one_rule({"any": [{"severity": "serious"}, {"severity": "serious"}]}, {}, hit="collect")[
        "matched_rules"
    ] == ["r"]


def test_tags_exists_regression() -> None:
    """Found while building the differential test: ``tags: {exists: ...}`` passes the ruleset
    checks, yet every ticket is then refused with "tags: must be a plain value"."""
    assert matched({"tags": {"exists": True}}, tags=["vip"])
    assert not matched({"tags": {"exists": False}}, tags=["vip"])


def test_merge_overrides_priority_and_unions_tags_in_order() -> None:
    tables = [
        {
            "name": "a",
            "hit": "collect",
            "rules": [
                {
                    "name": "a1",
                    "when": {"severity": "serious"},
                    "then": {"priority": "P3", "tags": ["x", "y"]},
                },
                {
                    "name": "a2",
                    "when": {"severity": {"at_least": "general"}},
                    "then": {"tags": ["z", "x"]},
                },
                {"name": "a3", "when": {"severity": "urgent"}, "then": {"priority": "P1"}},
            ],
        },
        {
            "name": "b",
            "hit": "first",
            "rules": [
                {"name": "b1", "when": {"tier": "gold"}, "then": {"priority": "P1"}},
            ],
            "default": {"priority": "P2", "tags": ["y", "w"]},
        },
        {
            "name": "c",
            "hit": "first",
            "rules": [
                {"name": "c1", "when": {"channel": "web"}, "then": {"tags": ["c"]}},
                {"name": "c2", "then": {"tags": ["d"]}},
            ],
        },
    ]
    doc = base_doc(f"ex-{next(_names)}", tables)
    text, compiled = compile_doc(doc)
    ticket = {
        "id": "T-1",
        "created_at": "2026-03-04T10:30:00Z",
        "severity": "serious",
        "channel": "web",
    }
    with Engine(RulesetLibrary([compiled])) as engine:
        actual = engine_decide(engine, doc["name"], ticket)
    assert actual == {
        "matched_rules": ["a1", "a2", "c1"],
        "priority": "P2",
        "tags": ["x", "y", "z", "w", "c"],
    }, text
    assert actual == oracle_decide(doc, ticket)


def test_first_table_without_default_and_no_match_raises() -> None:
    doc = base_doc(
        f"ex-{next(_names)}",
        [
            {
                "name": "t",
                "hit": "first",
                "rules": [{"name": "r", "when": {"tier": "gold"}, "then": {"priority": "P1"}}],
            },
        ],
    )
    _, compiled = compile_doc(doc)
    with Engine(RulesetLibrary([compiled])) as engine, pytest.raises(NoRuleMatched):
        engine.evaluate(
            {
                "id": "T-1",
                "created_at": "2026-03-04T10:30:00Z",
                "severity": "serious",
                "tier": "silver",
            },
            ruleset=doc["name"],
        )


def test_values_outside_a_vocabulary_and_non_numbers_are_refused() -> None:
    doc = base_doc(
        f"ex-{next(_names)}",
        [
            {
                "name": "t",
                "hit": "collect",
                "rules": [
                    {"name": "r", "when": {"fields.n": {"gt": 1}}, "then": {"priority": "P1"}},
                ],
            },
        ],
    )
    _, compiled = compile_doc(doc)
    base = {"id": "T-1", "created_at": "2026-03-04T10:30:00Z", "severity": "serious"}
    with Engine(RulesetLibrary([compiled])) as engine:
        for bad in (
            {"severity": "critical"},
            {"tier": "platinum"},
            {"channel": "fax"},
            {"fields": {"n": "2"}},
            {"fields": {"n": True}},
        ):
            with pytest.raises(TicketError):
                engine.evaluate({**base, **bad}, ruleset=doc["name"])
        # in-vocabulary values, a number, and a missing numeric field are fine
        assert engine.evaluate(
            {**base, "tier": "gold", "fields": {"n": 2}}, ruleset=doc["name"]
        ).matched_rules == ("r",)
        assert engine.evaluate(base, ruleset=doc["name"]).matched_rules == ()


def test_local_hour_and_weekday_are_read_in_the_ruleset_zone() -> None:
    doc = base_doc(
        f"ex-{next(_names)}",
        [
            {
                "name": "t",
                "hit": "collect",
                "rules": [
                    {"name": "hour", "when": {"local_hour": 1}, "then": {"tags": ["h"]}},
                    {"name": "day", "when": {"local_weekday": "thu"}, "then": {"tags": ["d"]}},
                ],
            },
        ],
        tz="Asia/Shanghai",
    )
    _, compiled = compile_doc(doc)
    # Wed 2026-03-04 17:30 UTC is Thu 01:30 in Shanghai.
    ticket = {"id": "T-1", "created_at": "2026-03-04T12:30:00-05:00", "severity": "serious"}
    with Engine(RulesetLibrary([compiled])) as engine:
        assert engine.evaluate(ticket, ruleset=doc["name"]).matched_rules == ("hour", "day")
    assert oracle_decide(doc, ticket)["matched_rules"] == ["hour", "day"]
    assert datetime(2026, 3, 4, 17, 30, tzinfo=UTC).astimezone(ZoneInfo("Asia/Shanghai")).hour == 1


def test_numbers_python_writes_in_exponent_form_regression() -> None:
    """Found by the differential test: durable_rules cannot read ``1e-09`` (Python's
    spelling of small and large floats), so the ruleset failed to compile."""
    assert matched({"fields.v": 1e-9}, fields={"v": 1e-9})
    assert matched({"fields.v": {"gt": 1e19}}, fields={"v": 1e20})
    assert not matched({"fields.v": {"lt": 1e-9}}, fields={"v": 2e-9})


def test_an_empty_group_inside_another_regression() -> None:
    """Found by the differential test: ``any: [{}]`` (always true) nested in a rule made
    the rule match although its other test failed."""
    assert not matched({"fields.l": {"contains": "a"}, "any": [{}]})
    assert matched({"fields.l": {"contains": "a"}, "any": [{}]}, fields={"l": ["a"]})
    assert not matched({"any": []})  # any of nothing never holds
    assert matched({"all": [], "not": {"any": []}})


def test_exists_false_on_the_first_ticket_a_table_sees_regression() -> None:
    """Found by the differential test: the first post into a fresh durable_rules session
    also matched ``exists: false`` rules against the session's own state object."""
    doc = base_doc(
        f"ex-{next(_names)}",
        [
            {
                "name": "t",
                "hit": "collect",
                "rules": [
                    {"name": "always", "then": {"tags": ["a"]}},
                    {"name": "no-l", "when": {"fields.l": {"exists": False}}, "then": {}},
                ],
            }
        ],
    )
    _, compiled = compile_doc(doc)
    ticket = {"id": "T-1", "created_at": "2026-03-04T10:30:00Z", "severity": "serious"}
    with Engine(RulesetLibrary([compiled])) as engine:
        first = engine.evaluate({**ticket, "fields": {"l": ["x"]}}, ruleset=doc["name"])
        assert first.matched_rules == ("always",)
        assert engine.evaluate(ticket, ruleset=doc["name"]).matched_rules == ("always", "no-l")


def test_a_condition_too_deeply_grouped_for_durable_rules_regression() -> None:
    """durable_rules refuses 16 or more and/or groups in one condition (error 113): such a
    rule is decided in Python into a key of its own, with the same answers."""
    many = {"all": [{"any": [{"fields.a": i}, {"fields.b": i}]} for i in range(20)]}
    assert not matched(many, fields={"a": 1, "b": 2})
    assert matched({"any": [many, {"fields.c": 1}]}, fields={"c": 1})
    every = {"a": 0, "b": 1}
    assert not matched(many, fields=every)
    assert matched(
        {"all": [{"any": [{"fields.a": 0}, {"fields.b": 0}]} for _ in range(20)]}, fields=every
    )
