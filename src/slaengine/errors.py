"""The one error hierarchy of slaengine.

Every error carries enough context to act on: a file, line and column for
rulesets, a field path for payloads.
"""

from __future__ import annotations


class SlaEngineError(Exception):
    """Base class of every error slaengine raises on purpose."""


class CalendarError(SlaEngineError, ValueError):
    """A calendar spec is invalid, or a calendar cannot answer (e.g. never open)."""


class NaiveDatetimeError(SlaEngineError, ValueError):
    """A datetime without a timezone was given where an instant is required."""


class TicketError(SlaEngineError, ValueError):
    """A ticket or event payload is invalid; ``path`` names the offending field."""

    def __init__(self, message: str, path: str = "") -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


class SignatureError(TicketError):
    """A webhook request whose signature is missing, wrong or stale; ``path`` names the header."""


class UnknownSourceError(SlaEngineError, LookupError):
    """No intake plugin accepts payloads of ``source``."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.path = "source"
        self.message = f"no intake plugin accepts source {source!r}"
        super().__init__(self.message)


class RulesetError(SlaEngineError, ValueError):
    """One problem in a ruleset file, located by file, line, column and key path."""

    def __init__(
        self,
        message: str,
        *,
        file: str = "<string>",
        line: int | None = None,
        column: int | None = None,
        path: str = "",
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.path = path
        super().__init__(self.location() + ": " + (f"{path}: " if path else "") + message)

    def location(self) -> str:
        """``file:line:column`` (the parts that are known)."""
        parts = [self.file]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)


class RulesetErrors(SlaEngineError, ValueError):
    """Several ruleset problems found at once (loading reports all, not the first)."""

    def __init__(self, errors: list[RulesetError]) -> None:
        self.errors = errors
        super().__init__(f"{len(errors)} ruleset error(s):\n" + "\n".join(str(e) for e in errors))


class NoRuleMatched(SlaEngineError):
    """No rule of a table matched a ticket and the table declares no default."""


class EventError(SlaEngineError, ValueError):
    """A ticket event is invalid for the timeline it is replayed in."""

    def __init__(self, message: str, path: str = "") -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)
