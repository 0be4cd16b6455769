"""The durable_rules adapter: the only module that talks to durable_rules.

Compiled tables are registered here as durable_rules rulesets and matched
against encoded ticket facts. Measured sharp edges of durable_rules 2.0.28
that shape this module:

- a ruleset of about 511 rules or more hangs the first post: tables are split
  into chunks of at most ``CHUNK_RULES`` rules, matched in order;
- ``id`` and ``sid`` are reserved message keys: the compiler emits keys of
  its own (``k0_severity`` ...) and ``sid`` is set here only;
- a registered name cannot be registered again: names carry the ruleset's
  revision plus a serial number, and ``close`` deletes them;
- its JSON reader refuses a number in exponent form without a fraction
  (``1e-09``, which is how Python writes small and large floats): ``_dumps``
  writes ``1.0e-09`` instead;
- the C core keeps global handles and is not thread-safe: every call into
  it holds one process-wide lock.

We call the C core (``durable_rules_engine``) directly instead of going
through ``durable.engine.Host``: the Host starts two polling threads that call
into the core outside any lock of ours, and wraps every match in Python
closures that evaluation does not need.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import durable_rules_engine as _core

#: Rules per durable_rules ruleset; ~511 hang durable_rules 2.0.28.
CHUNK_RULES = 250

_LOCK = threading.RLock()
_serial = itertools.count()

# JSON tokens: a string (kept as is) or a number: integer, fraction, exponent.
_EXPONENT_HINT = re.compile(r"\d[eE]")
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|(-?\d+)(\.\d+)?([eE][-+]?\d+)?')


def _number(match: re.Match[str]) -> str:
    integer, fraction, exponent = match.groups()
    if integer is None or fraction is not None or exponent is None:
        return match[0]
    return f"{integer}.0{exponent}"


def _dumps(value: Any) -> str:
    """JSON that durable_rules reads: ``1e-09`` becomes ``1.0e-09``."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    if _EXPONENT_HINT.search(text) is None:
        return text
    return _TOKENS.sub(_number, text)


@dataclass(frozen=True)
class CompiledRule:
    """One rule as durable_rules sees it: a condition on message ``m``."""

    index: int  # the rule's position in its table
    condition: dict[str, Any]


class _Chunk:
    def __init__(self, name: str, rules: Sequence[CompiledRule]) -> None:
        self.name = name
        # Action names are the rule positions; lower ``pri`` fires first
        # (``pri`` 0 is dropped by durable_rules, so positions start at 1).
        definition = {
            f"r{rule.index}": {"all": [{"m": rule.condition}], "pri": rule.index + 1}
            for rule in rules
        }
        self.names = {f"r{rule.index}": rule.index for rule in rules}
        with _LOCK:
            self.handle = _core.create_ruleset(name, _dumps(definition))
            # The first post of a session also creates its state object, which
            # ``$nex`` conditions then match as if it were the message: post
            # once and throw the result away so real posts see no state event.
            warm = _dumps({"sid": "0"})
            result = _core.assert_fact(self.handle, warm)
            _fire(self, result)
            if result[0] == 0:
                _core.retract_fact(self.handle, warm)


class TableMatcher:
    """One rule table registered in durable_rules.

    ``first_match`` posts the facts as an event (consumed by the matching rule
    of lowest position); ``all_matches`` asserts them as a fact, collects
    every rule that fires, and retracts it.
    """

    def __init__(self, name: str, rules: Sequence[CompiledRule]) -> None:
        serial = next(_serial)
        self.chunks = [
            _Chunk(f"{name}#{serial}.{n}", rules[start : start + CHUNK_RULES])
            for n, start in enumerate(range(0, len(rules), CHUNK_RULES))
        ]
        self.closed = False

    def first_match(self, message: dict[str, Any]) -> int | None:
        """Position of the first rule (in table order) whose condition holds, or None."""
        payload = _dumps({**message, "sid": "0"})
        with _LOCK:
            for chunk in self.chunks:
                fired = _fire(chunk, _core.assert_event(chunk.handle, payload))
                if fired:
                    return chunk.names[fired[0]]
        return None

    def all_matches(self, message: dict[str, Any]) -> list[int]:
        """Positions of every rule whose condition holds, in table order, each once.

        A rule whose compiled condition is an ``$or`` fires once for every
        branch that holds, so the positions are collected as a set.
        """
        payload = _dumps({**message, "sid": "0"})
        found: set[int] = set()
        with _LOCK:
            for chunk in self.chunks:
                result = _core.assert_fact(chunk.handle, payload)
                try:
                    found.update(chunk.names[name] for name in _fire(chunk, result))
                finally:
                    if result[0] == 0:
                        _core.retract_fact(chunk.handle, payload)
        return sorted(found)

    def close(self) -> None:
        """Free the durable_rules rulesets of this table."""
        if self.closed:
            return
        with _LOCK:
            for chunk in self.chunks:
                _core.delete_ruleset(chunk.handle)
        self.closed = True


def _fire(chunk: _Chunk, result: tuple[int, int]) -> list[str]:
    """Run the actions a post started; return the fired action names in order."""
    code, state = result
    if code != 0:  # 1: nothing matched; anything else is not a match either
        return []
    fired: list[str] = []
    started = _core.start_action_for_state(chunk.handle, state)
    if not started:
        return fired
    fired.extend(json.loads(started[1]))
    while True:
        more = _core.complete_and_start_action(chunk.handle, state)
        if not more:
            return fired
        fired.extend(json.loads(more))


def close_all(matchers: Iterable[TableMatcher]) -> None:
    """Close several matchers."""
    for matcher in matchers:
        matcher.close()
