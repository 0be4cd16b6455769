"""Durations as contract managers write them: ``15m``, ``4h``, ``1h30m``, ``2d``.

``d`` means working days of the calendar the target is counted in; the other
units are business time (hours and minutes that the calendar is open).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_WHOLE = re.compile(r"^(?:\d+(?:\.\d+)?[smhw])+$|^\d+d$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "w": 7 * 86400}
#: The longest duration: a century (calendars answer for 1900-2200). Longer is
#: a slip of the keyboard, and past the 64-bit microsecond counts of the clocks.
MOST_DAYS = 100 * 365
MOST_SECONDS = MOST_DAYS * 86400
_TOO_LONG = "is longer than a century; the most is 876000h (or 36500d working days)"


class Duration(BaseModel):
    """A target length: either business time (``seconds``) or working ``days``."""

    model_config = ConfigDict(frozen=True)

    text: str
    seconds: int | None = None
    days: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        # In YAML a duration is written as text (``4h``); parse it here so
        # that errors carry the key they were written under.
        if isinstance(data, (str, int, float)) and not isinstance(data, bool):
            return parse_duration(data).model_dump()
        return data

    @property
    def timedelta(self) -> timedelta | None:
        """The business-time length, or None for a working-days target."""
        return None if self.seconds is None else timedelta(seconds=self.seconds)

    def __str__(self) -> str:
        return self.text


def parse_duration(text: object) -> Duration:
    """Parse ``15m``/``4h``/``1h30m``/``2d``; raise ValueError saying how to write one.

    Working days (``d``) stand alone: ``2d`` is two working days, ``1d4h`` is
    refused because a working day has no fixed length.
    """
    raw = str(text).strip().replace(" ", "")
    if not _WHOLE.match(raw):
        raise ValueError(
            f"{text!r} is not a duration; use e.g. 30m, 4h, 1h30m or 2d (working days)"
        )
    if raw.endswith("d"):
        days = int(raw[:-1])
        if days <= 0:
            raise ValueError(f"{text!r}: a working-days target must be at least 1d")
        if days > MOST_DAYS:
            raise ValueError(f"{text!r} {_TOO_LONG}")
        return Duration(text=raw, days=days)
    seconds = sum(float(n) * _SECONDS[unit] for n, unit in _PART.findall(raw))
    if seconds <= 0:
        raise ValueError(f"{text!r}: a duration must be longer than zero")
    if seconds > MOST_SECONDS:
        raise ValueError(f"{text!r} {_TOO_LONG}")
    return Duration(text=raw, seconds=round(seconds))
