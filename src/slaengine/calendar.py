"""Service calendars: when the SLA clock runs.

A :class:`Calendar` holds a timezone, weekly hours, holidays (explicit dates
and the public holidays of a country from the ``holidays`` package), extra
working days (China's make-up workdays come with ``country: CN``), special
hours on given dates, and closed periods cut out of it. It answers the
business-time questions that due times, pauses and breach checks need.

Readings of the spec where it could be read two ways:

- A span belongs to the date it starts on: ``mon: ["22:00-06:00"]`` is Monday
  22:00 to Tuesday 06:00. A holiday on Monday closes that whole shift; a
  holiday on Tuesday does not touch it.
- A date's hours, most specific first: ``special_hours``, ``workdays``,
  explicit holiday dates, country holidays, country make-up workdays, the
  weekly ``hours``. A date both listed in ``holidays`` and in ``workdays`` is
  an error.
- Make-up workdays (from the holidays package) and ``workdays`` given as a
  plain list of dates get the calendar's *usual hours*: those of the first
  weekday, Monday to Sunday, that has hours.
- Local wall times become instants through zoneinfo with ``fold=0``: a
  spring-forward day open 00:00-24:00 holds 23 hours, an autumn one 25, and a
  span that falls inside the gap shrinks or vanishes.
- ``Calendar.from_spec("always")`` (or ``"7x24"``, ``"24x7"``) is
  :meth:`Calendar.always`, 7x24 in UTC; ``{"always": true, "timezone": ...}``
  is 7x24 in that zone, and may still name holidays or special hours.
- The extra key ``closed`` (a list of ``[start, end]`` ISO instants) records
  what :meth:`Calendar.excluding` cut out, so ``Calendar.from_spec(cal.spec)``
  gives back an equal calendar.
- Calendars answer for the local years 1900 to 2200, or up to the last year
  the holidays package covers (2100 today) when they name a country; other
  instants raise :class:`CalendarError` rather than silently lose holidays.
- ``periods`` clips the open periods to the range asked about.

Results are datetimes in the calendar's zone. Compare or subtract them in UTC:
Python compares and subtracts two datetimes sharing one tzinfo by wall clock.

Why it is fast at any distance: the open periods are laid out, lazily for a
block of years, as sorted UTC epoch microseconds with a running total of
business time; every question is then a bisection, never a walk day by day.
The table grows (at least doubling) when a question reaches past it.
"""

from __future__ import annotations

import re
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_package
from pydantic import BaseModel, ConfigDict

from slaengine.errors import CalendarError, NaiveDatetimeError

__all__ = [
    "Calendar",
    "CalendarDefinition",
    "FIRST_YEAR",
    "LAST_YEAR",
    "WEEKDAYS",
    "EpochArithmetic",
    "epoch_us",
]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: Calendars answer for instants whose local year lies in FIRST_YEAR..LAST_YEAR.
FIRST_YEAR = 1900
LAST_YEAR = 2200

#: A span of one date: minutes after that date's midnight, ``start < end``;
#: ``end`` goes past 1440 for a span that runs into the next date.
Span = tuple[int, int]
#: An open or closed period: [start, end) in epoch microseconds (UTC).
Period = tuple[int, int]

_DAY_MINUTES = 1440
_DAY_US = 86_400_000_000
_WEEK_MINUTES = 7 * _DAY_MINUTES
_US = 1_000_000
_ONE_US = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# More business time than any calendar's years hold (every year open all year).
_MOST_US = (LAST_YEAR - FIRST_YEAR + 1) * 366 * _DAY_US
_LONGEST_US = timedelta.max // _ONE_US
# Spans of the last date before a table can run into its first two days.
_SPILL_US = 2 * 86_400 * _US
_SPEC_KEYS = ("always", "closed", "holidays", "hours", "special_hours", "timezone", "workdays")
_ALWAYS_NAMES = ("always", "7x24", "24x7")
_SPAN_RE = re.compile(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*")


class EpochArithmetic(Protocol):
    """Business-time arithmetic on epoch microseconds (see :attr:`Calendar.arithmetic`)."""

    def is_open(self, us: int) -> bool:
        """Whether instant ``us`` lies in working time."""
        ...

    def elapsed(self, a: int, b: int) -> int:
        """Business time between instants ``a`` and ``b``; negative when ``b < a``."""
        ...

    def add(self, us: int, amount: int) -> int:
        """The instant at which ``amount`` of business time after ``us`` is used up."""
        ...


class CalendarDefinition(BaseModel):
    """The validated, normalized content of a calendar: a frozen, hashable value."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: str
    #: Seven tuples of spans, Monday first.
    weekly: tuple[tuple[Span, ...], ...]
    holidays: tuple[date, ...] = ()
    #: (country code, subdivision code or None) pairs for the holidays package.
    countries: tuple[tuple[str, str | None], ...] = ()
    workdays: tuple[tuple[date, tuple[Span, ...]], ...] = ()
    special_hours: tuple[tuple[date, tuple[Span, ...]], ...] = ()
    #: Closed [start, end) instants in UTC, sorted and disjoint.
    closed: tuple[tuple[datetime, datetime], ...] = ()


class Calendar:
    """Service hours in a timezone; an immutable, hashable value.

    Build one with :meth:`from_spec`, :meth:`always`, or keywords that mirror
    the spec keys (``Calendar("Europe/Paris", {"mon-fri": ["09:00-17:00"]})``).
    Every method takes and returns timezone-aware datetimes (results in the
    calendar's zone); open periods are half-open, ``[opening, closing)``.
    """

    __slots__ = ("definition", "timezone", "zone", "_epoch", "_timeline")

    definition: CalendarDefinition
    #: The IANA name of the calendar's zone.
    timezone: str
    zone: ZoneInfo
    _epoch: datetime
    _timeline: _Timeline

    def __init__(
        self,
        timezone: str,
        hours: Mapping[Any, Any] | None = None,
        *,
        holidays: Iterable[Any] = (),
        workdays: Iterable[Any] | Mapping[Any, Any] = (),
        special_hours: Mapping[Any, Any] | None = None,
    ) -> None:
        spec = {
            "timezone": timezone,
            "hours": hours or {},
            "holidays": list(holidays),
            "workdays": workdays if isinstance(workdays, Mapping) else list(workdays),
            "special_hours": special_hours or {},
        }
        self._setup(_parse_spec(spec), None)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | str) -> Calendar:
        """Build a calendar from a YAML-shaped mapping (or the string ``"always"``).

        Keys: ``timezone`` (required unless ``always``), ``hours``, ``holidays``,
        ``workdays``, ``special_hours``, ``always``, ``closed``. Raises
        CalendarError naming the key path of the first problem found.
        """
        if isinstance(spec, str):
            if spec.strip().lower() in _ALWAYS_NAMES:
                return cls.always()
            raise CalendarError(f"calendar: {spec!r} is not a calendar; give a mapping or 'always'")
        return cls._from_definition(_parse_spec(spec))

    @classmethod
    def always(cls) -> Calendar:
        """The 7x24 calendar in UTC (one shared instance)."""
        return _always()

    @classmethod
    def _from_definition(
        cls, definition: CalendarDefinition, raw_years: dict[int, list[Period]] | None = None
    ) -> Calendar:
        calendar = cls.__new__(cls)
        calendar._setup(definition, raw_years)
        return calendar

    def _setup(
        self, definition: CalendarDefinition, raw_years: dict[int, list[Period]] | None
    ) -> None:
        zone = ZoneInfo(definition.timezone)
        set_slot = object.__setattr__
        set_slot(self, "definition", definition)
        set_slot(self, "timezone", definition.timezone)
        set_slot(self, "zone", zone)
        set_slot(self, "_epoch", datetime(1970, 1, 1, tzinfo=zone))
        set_slot(self, "_timeline", _Timeline(definition, zone, raw_years))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Calendar is immutable; cannot set {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Calendar):
            return NotImplemented
        return self.definition == other.definition

    def __hash__(self) -> int:
        return hash(self.definition)

    def __repr__(self) -> str:
        return f"Calendar.from_spec({self.spec!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Calendar._from_definition, (self.definition,))

    @property
    def spec(self) -> dict[str, Any]:
        """The normalized spec: one key per weekday, ISO dates, ``HH:MM-HH:MM`` spans.

        ``Calendar.from_spec(cal.spec) == cal``.
        """
        d = self.definition
        holidays: list[Any] = [day.isoformat() for day in d.holidays]
        holidays += [{"country": country, "subdiv": subdiv} for country, subdiv in d.countries]
        spec: dict[str, Any] = {
            "timezone": d.timezone,
            "hours": {WEEKDAYS[i]: _format_spans(s) for i, s in enumerate(d.weekly) if s},
            "holidays": holidays,
            "workdays": {day.isoformat(): _format_spans(s) for day, s in d.workdays},
            "special_hours": {day.isoformat(): _format_spans(s) for day, s in d.special_hours},
        }
        if d.closed:
            spec["closed"] = [[start.isoformat(), end.isoformat()] for start, end in d.closed]
        return spec

    # -- questions -------------------------------------------------------------

    def is_open(self, t: datetime) -> bool:
        """Whether ``t`` lies in working time (open at opening, closed at closing)."""
        return self._timeline.is_open(_to_us(t))

    @property
    def arithmetic(self) -> EpochArithmetic:
        """This calendar's arithmetic on epoch microseconds, for loops that hold integers.

        ``is_open(us)``, ``elapsed(a, b)`` and ``add(us, amount)`` give what
        :meth:`is_open`, :meth:`elapsed` and :meth:`add` give, without
        converting datetimes both ways (two to three times cheaper). The
        clocks and the engine's batch path count with it.
        """
        return self._timeline

    def is_holiday(self, t: datetime) -> bool:
        """Whether ``t``'s local date is a holiday: listed, or a public holiday of a
        named country, and not listed in ``workdays``. Special hours don't count.
        """
        return self._timeline.is_holiday(self._datetime(_to_us(t)).date())

    def next_open(self, t: datetime) -> datetime:
        """``t`` itself if open, else the next opening after ``t``."""
        return self._datetime(self._timeline.next_open(_to_us(t)))

    def previous_close(self, t: datetime) -> datetime:
        """``t`` itself if open, else the last closing before ``t``."""
        return self._datetime(self._timeline.previous_close(_to_us(t)))

    def add(self, t: datetime, amount: timedelta) -> datetime:
        """The instant at which ``amount`` of business time after ``t`` is used up.

        A start outside hours counts from the next opening; a budget that runs
        out exactly at a closing is due at that closing. A negative amount goes
        backward from the previous closing and ends, at the latest, at an
        opening. ``amount == 0`` gives ``next_open(t)``.
        """
        if not isinstance(amount, timedelta):
            raise TypeError(f"amount must be a timedelta, got {type(amount).__name__}")
        start, amount_us = _to_us(t), amount // _ONE_US
        if not -_MOST_US <= amount_us <= _MOST_US:
            raise _more_than_the_years(amount_us, self._timeline.years)
        return self._datetime(self._timeline.add(start, amount_us))

    def add_from_epoch(self, start_us: int, amount_us: int) -> datetime:
        """:meth:`add` for a start given in epoch microseconds (see :func:`epoch_us`).

        For callers that count several targets from one instant: the
        conversion of the start is done once, not once per target.
        """
        return self._datetime(self._timeline.add(start_us, amount_us))

    def add_days_from_epoch(self, start_us: int, n: int) -> datetime:
        """:meth:`add_days` for a start given in epoch microseconds (see :func:`epoch_us`)."""
        timeline = self._timeline
        if n == 0:
            return self._datetime(timeline.next_open(start_us))
        local = self._datetime(start_us)
        day, midnight = timeline.nth_working_midnight(local.toordinal(), n)
        if midnight is not None:  # no clock change that day: wall time is midnight + time
            wall_us = (
                midnight
                + local.microsecond
                + 1_000_000 * (local.second + 60 * local.minute + 3600 * local.hour)
            )
        else:
            wall = datetime.combine(day, local.time(), self.zone).replace(fold=0)
            wall_us = _epoch_us(wall)
        return self._datetime(timeline.next_open(wall_us))

    def add_days(self, t: datetime, n: int) -> datetime:
        """``n`` working days after ``t`` (before it if ``n`` is negative).

        The same local clock time on the n-th following (preceding) date that
        has working time of its own, moved to the next opening if that time is
        outside hours. ``n == 0`` gives ``next_open(t)``. Costs a binary search
        in a per-year index of working dates (O(|n| / 365) years walked).
        """
        return self.add_days_from_epoch(_to_us(t), n)

    def elapsed(self, a: datetime, b: datetime) -> timedelta:
        """Business time between ``a`` and ``b``; negative when ``b < a``."""
        return _ONE_US * self._timeline.elapsed(_to_us(a), _to_us(b))

    def periods(self, a: datetime, b: datetime) -> list[tuple[datetime, datetime]]:
        """The open periods within ``[a, b)``, in order, clipped to ``[a, b)``.

        Measure a period as ``end.astimezone(UTC) - start.astimezone(UTC)``: a
        plain ``end - start`` is wall-clock time, wrong across a DST change.
        """
        return [
            (self._datetime(start), self._datetime(end))
            for start, end in self._timeline.periods(_to_us(a), _to_us(b))
        ]

    def excluding(self, intervals: Iterable[tuple[datetime, datetime]]) -> Calendar:
        """This calendar with the given ``[start, end)`` instants closed as well."""
        cut: list[Period] = []
        for i, pair in enumerate(intervals):
            try:
                start, end = pair
            except (TypeError, ValueError):
                raise CalendarError(
                    f"intervals[{i}]: {pair!r} is not a (start, end) pair"
                ) from None
            s, e = _to_us(start, f"intervals[{i}] start"), _to_us(end, f"intervals[{i}] end")
            if e < s:
                raise CalendarError(f"intervals[{i}]: end {end} is before start {start}")
            if e > s:
                cut.append((s, e))
        if not cut:
            return self
        closed = _merge(self._timeline.closed + cut)
        definition = self.definition.model_copy(
            update={"closed": tuple((_utc(s), _utc(e)) for s, e in closed)}
        )
        return Calendar._from_definition(definition, self._timeline.raw_years)

    def _datetime(self, us: int) -> datetime:
        # fromutc reads the wall fields as UTC and sets fold; it is several
        # times faster than fromtimestamp followed by replace(microsecond=...).
        return self.zone.fromutc(self._epoch + _ONE_US * us)


@cache
def _always() -> Calendar:
    return Calendar.from_spec({"always": True, "timezone": "UTC"})


# -- arithmetic on epoch microseconds ------------------------------------------


class _Table:
    """Open periods of the local years lo_year..hi_year, with running totals.

    ``cum[i]`` is the business time before period i, ``cum_end[i]`` that up to
    its end. The table is exact for instants in ``[lo_us, hi_us)``; outside, it
    may miss open time (never invent it).
    """

    __slots__ = ("lo_year", "hi_year", "lo_us", "hi_us", "starts", "ends", "cum", "cum_end")

    def __init__(
        self, lo_year: int, hi_year: int, lo_us: int, hi_us: int, periods: list[Period]
    ) -> None:
        self.lo_year, self.hi_year, self.lo_us, self.hi_us = lo_year, hi_year, lo_us, hi_us
        self.starts = [s for s, _ in periods]
        self.ends = [e for _, e in periods]
        self.cum: list[int] = []
        self.cum_end: list[int] = []
        total = 0
        for s, e in periods:
            self.cum.append(total)
            total += e - s
            self.cum_end.append(total)

    def position(self, us: int) -> int:
        """Business time from the table's start up to instant ``us``."""
        k = _bisect_right(self.starts, us) - 1
        if k < 0:
            return 0
        start, end, counted = self.starts[k], self.ends[k], self.cum[k]
        return counted + (end if us > end else us) - start


# The table's searches, written out rather than bisect's: compiled (see
# calendar.pxd), they are C loops over the lists' integers, several times
# faster than bisect's calls through Python comparisons.


def _bisect_right(values: list[int], x: int) -> int:
    """bisect.bisect_right(values, x)."""
    lo, hi = 0, len(values)
    while lo < hi:
        mid = (lo + hi) >> 1
        value = values[mid]
        if x < value:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _bisect_left(values: list[int], x: int) -> int:
    """bisect.bisect_left(values, x)."""
    lo, hi = 0, len(values)
    while lo < hi:
        mid = (lo + hi) >> 1
        value = values[mid]
        if value < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


class _Timeline:
    """The open periods of one calendar as epoch microseconds, grown on demand."""

    def __init__(
        self,
        definition: CalendarDefinition,
        zone: ZoneInfo,
        raw_years: dict[int, list[Period]] | None,
    ) -> None:
        self.zone = zone
        self.weekly = definition.weekly
        self.usual = next((spans for spans in definition.weekly if spans), ())
        self.holidays = frozenset(definition.holidays)
        self.countries = definition.countries
        self.workdays = dict(definition.workdays)
        self.special = dict(definition.special_hours)
        self.closed = [(_epoch_us(s), _epoch_us(e)) for s, e in definition.closed]
        # Periods per year before `closed` is cut: shared by calendars derived
        # with `excluding`, which differ only in `closed`.
        self.raw_years: dict[int, list[Period]] = {} if raw_years is None else raw_years
        self.table: _Table | None = None
        self.working: dict[int, list[int]] = {}  # year -> ordinals of its working dates
        self.nth_cache: dict[tuple[int, int], tuple[date, int | None]] = {}
        self.lock = threading.Lock()
        self.first_year = FIRST_YEAR
        self.last_year = min([LAST_YEAR] + [_country_last_year(*c) for c in self.countries])
        self.years = f"{self.first_year}..{self.last_year} this calendar answers for"
        if self.last_year < LAST_YEAR:
            self.years += f" (the holidays package knows its holidays up to {self.last_year})"

    # Which hours each date has.

    def day_spans(
        self, day: date, off: frozenset[date], makeup: frozenset[date]
    ) -> tuple[Span, ...]:
        if day in self.special:
            return self.special[day]
        if day in self.workdays:
            return self.workdays[day]
        if day in self.holidays or day in off:
            return ()
        if day in makeup:
            return self.usual
        return self.weekly[day.weekday()]

    def country_days(self, year: int) -> tuple[frozenset[date], frozenset[date]]:
        off: frozenset[date] = frozenset()
        makeup: frozenset[date] = frozenset()
        for country, subdiv in self.countries:
            country_off, country_makeup = _country_days(country, subdiv, year)
            off |= country_off
            makeup |= country_makeup
        return off, makeup

    def wall_us(self, day: date, minutes: int) -> int:
        days, minutes = divmod(minutes, _DAY_MINUTES)
        if days:
            day += timedelta(days=days)
        wall = datetime(day.year, day.month, day.day, minutes // 60, minutes % 60, tzinfo=self.zone)
        return (wall - _EPOCH) // _ONE_US

    def own_periods(self, day: date, spans: tuple[Span, ...]) -> list[Period]:
        periods = [(self.wall_us(day, s), self.wall_us(day, e)) for s, e in spans]
        return [(s, e) for s, e in periods if e > s]

    def year_periods(self, year: int) -> list[Period]:
        periods = self.raw_years.get(year)
        if periods is None:
            off, makeup = self.country_days(year)
            periods = []
            day, one = date(year, 1, 1), timedelta(days=1)
            while day.year == year:
                periods += self.own_periods(day, self.day_spans(day, off, makeup))
                day += one
            self.raw_years[year] = periods
        return periods

    def is_holiday(self, day: date) -> bool:
        if not self.first_year <= day.year <= self.last_year:
            raise CalendarError(f"{day} is outside the years {self.years}")
        if day in self.workdays:
            return False
        return day in self.holidays or day in self.country_days(day.year)[0]

    def is_working_date(self, day: date) -> bool:
        if not self.first_year <= day.year <= self.last_year:
            raise CalendarError(f"no such working day in the years {self.years}")
        spans = self.day_spans(day, *self.country_days(day.year))
        return any(self.elapsed(s, e) > 0 for s, e in self.own_periods(day, spans))

    def working_dates(self, year: int) -> list[int]:
        """Ordinals of the dates of ``year`` with working time of their own, in order."""
        found = self.working.get(year)
        if found is not None:
            return found
        if not self.first_year <= year <= self.last_year:
            raise CalendarError(f"no such working day in the years {self.years}")
        # A raw period belongs to the local date it starts on (a night span
        # that runs past midnight belongs to the evening it starts).
        zone = self.zone
        raw = sorted(
            {
                (_EPOCH + timedelta(microseconds=s)).astimezone(zone).toordinal()
                for s, _ in self.year_periods(year)
            }
        )
        # Closed periods may empty a date (or the evening before, for night
        # spans): only those dates are checked one by one.
        lo, hi = date(year, 1, 1).toordinal(), date(year, 12, 31).toordinal()
        touched: set[int] = set()
        for s, e in self.closed:
            first = (_EPOCH + timedelta(microseconds=s)).astimezone(zone).toordinal() - 1
            last = (_EPOCH + timedelta(microseconds=e)).astimezone(zone).toordinal()
            touched.update(range(max(first, lo), min(last, hi) + 1))
        found = [o for o in raw if o not in touched or self.is_working_date(date.fromordinal(o))]
        self.working[year] = found
        return found

    def nth_working_midnight(self, ordinal: int, n: int) -> tuple[date, int | None]:
        """``nth_working_date`` of the date with ``ordinal``, with that date's midnight.

        The midnight (epoch µs) is given only when the date has 24 hours and
        one UTC offset throughout, so that a wall time on it is midnight plus
        the time of day; else None. Kept per (date, n): add_days calls it
        with few distinct arguments.
        """
        found = self.nth_cache.get((ordinal, n))
        if found is None:
            day = self.nth_working_date(date.fromordinal(ordinal), n)
            zone = self.zone
            start = datetime(day.year, day.month, day.day, tzinfo=zone)
            last = datetime.combine(day, time.max, zone)
            midnight = _epoch_us(start)
            uniform = (
                _epoch_us(datetime.combine(day + timedelta(days=1), time(), zone)) - midnight
                == _DAY_US
                and start.utcoffset() == last.utcoffset()
            )
            found = (day, midnight if uniform else None)
            self.nth_cache[(ordinal, n)] = found
        return found

    def nth_working_date(self, day: date, n: int) -> date:
        """The ``n``-th working date after ``day`` (before it when ``n`` is negative)."""
        ordinal, year = day.toordinal(), day.year
        if n > 0:
            dates = self.working_dates(year)
            i = bisect_right(dates, ordinal) + n - 1
            while i >= len(dates):
                i -= len(dates)
                year += 1
                dates = self.working_dates(year)
            return date.fromordinal(dates[i])
        dates = self.working_dates(year)
        i = bisect_left(dates, ordinal) + n
        while i < 0:
            year -= 1
            dates = self.working_dates(year)
            i += len(dates)
        return date.fromordinal(dates[i])

    # The table.

    def build(self, lo_year: int, hi_year: int) -> _Table:
        raw = [p for year in range(lo_year, hi_year + 1) for p in self.year_periods(year)]
        lo_us = self.wall_us(date(lo_year, 1, 1), 0) + _SPILL_US
        hi_us = self.wall_us(date(hi_year + 1, 1, 1), 0)
        return _Table(lo_year, hi_year, lo_us, hi_us, _cut(_merge(raw), self.closed))

    def covering(self, us: int) -> _Table:
        """A table exact at ``us`` (built or grown if needed)."""
        table = self.table
        if table is not None and table.lo_us <= us < table.hi_us:
            return table
        year = _local_year(us, self.zone)
        if not self.first_year <= year <= self.last_year:
            raise CalendarError(f"{_iso(us, self.zone)} is outside the years {self.years}")
        with self.lock:
            table = self.table
            while table is None or not table.lo_us <= us < table.hi_us:
                if table is None:
                    lo, hi = max(self.first_year, year - 1), min(self.last_year, year + 1)
                else:
                    lo, hi, width = table.lo_year, table.hi_year, table.hi_year - table.lo_year + 1
                    if us < table.lo_us:
                        lo = max(self.first_year, min(year - 1, lo - width))
                    else:
                        hi = min(self.last_year, max(year + 1, hi + width))
                    if (lo, hi) == (table.lo_year, table.hi_year):
                        raise CalendarError(
                            f"{_iso(us, self.zone)} is too close to the edge of the "
                            f"years {self.years}"
                        )
                table = self.table = self.build(lo, hi)
            return table

    def grown(self, table: _Table, forward: bool) -> _Table | None:
        """A table reaching further than ``table``; None at the year limits."""
        with self.lock:
            current = self.table
            assert current is not None
            lo, hi = min(table.lo_year, current.lo_year), max(table.hi_year, current.hi_year)
            width = hi - lo + 1
            if forward:
                hi = min(self.last_year, hi + width)
            else:
                lo = max(self.first_year, lo - width)
            if (lo, hi) == (table.lo_year, table.hi_year):
                return None
            if (lo, hi) != (current.lo_year, current.hi_year):
                self.table = self.build(lo, hi)
            return self.table

    # Questions, on epoch microseconds.

    def is_open(self, us: int) -> bool:
        table = self.covering(us)
        k = _bisect_right(table.starts, us) - 1
        return k >= 0 and us < table.ends[k]

    def next_open(self, us: int) -> int:
        table: _Table | None = self.covering(us)
        while table is not None:
            i = _bisect_right(table.ends, us)
            if i < len(table.starts):
                start = table.starts[i]
                if start <= us:
                    return us
                if start < table.hi_us:
                    return start
            table = self.grown(table, forward=True)
        raise CalendarError(
            f"the calendar has no working time after {_iso(us, self.zone)} "
            f"(looked up to the end of {self.last_year})"
        )

    def previous_close(self, us: int) -> int:
        table: _Table | None = self.covering(us)
        while table is not None:
            k = _bisect_right(table.starts, us) - 1
            if k >= 0:
                end = table.ends[k]
                if us < end:
                    return us
                if end > table.lo_us:
                    return end
            table = self.grown(table, forward=False)
        raise CalendarError(
            f"the calendar has no working time before {_iso(us, self.zone)} "
            f"(looked back to the start of {self.first_year})"
        )

    def add(self, us: int, amount: int) -> int:
        if not -_MOST_US <= amount <= _MOST_US:  # (and the sums below fit in 64 bits)
            raise _more_than_the_years(amount, self.years)
        table: _Table | None = self.table
        if amount > 0 and table is not None and table.lo_us <= us < table.hi_us:
            # The common case, inlined: start and due time both within the table.
            starts, cum = table.starts, table.cum
            i = _bisect_right(table.ends, us)
            if i < len(starts):
                start = starts[i]
                if start < table.hi_us:
                    counted = cum[i]
                    target = counted + amount + (us - start if us > start else 0)
                    k = _bisect_left(table.cum_end, target)
                    if k < len(starts):
                        opens, counted = starts[k], cum[k]
                        due = opens + target - counted
                        if due <= table.hi_us:
                            return due
        if amount == 0:
            return self.next_open(us)
        if amount > 0:
            start = self.next_open(us)
            table = self.covering(start)
            while table is not None:
                # The earliest instant with `amount` of business time since start.
                target = table.position(start) + amount
                k = _bisect_left(table.cum_end, target)
                if k < len(table.starts):
                    opens, counted = table.starts[k], table.cum[k]
                    due = opens + target - counted
                    if due <= table.hi_us:
                        return due
                table = self.grown(table, forward=True)
            raise CalendarError(
                f"the calendar has less than {_ONE_US * amount} of working "
                f"time after {_iso(start, self.zone)} (looked up to the end of {self.last_year})"
            )
        end = self.previous_close(us)
        table = self.covering(end)
        while table is not None:
            # The latest instant with -amount of business time before end.
            target = table.position(end) + amount
            if target >= 0:
                k = _bisect_right(table.cum, target) - 1
                opens, counted = table.starts[k], table.cum[k]
                due = opens + target - counted
                if due >= table.lo_us:
                    return due
            table = self.grown(table, forward=False)
        raise CalendarError(
            f"the calendar has less than {-_ONE_US * amount} of working "
            f"time before {_iso(end, self.zone)} (looked back to the start of {self.first_year})"
        )

    def elapsed(self, a: int, b: int) -> int:
        table = self.table
        if table is None or not (table.lo_us <= a < table.hi_us and table.lo_us <= b < table.hi_us):
            self.covering(a)
            table = self.covering(b)  # grows the table, which keeps covering a
        return table.position(b) - table.position(a)

    def periods(self, a: int, b: int) -> list[Period]:
        if b <= a:
            return []
        self.covering(a)
        table = self.covering(b)
        i = _bisect_right(table.ends, a)
        out = []
        while i < len(table.starts) and table.starts[i] < b:
            out.append((max(a, table.starts[i]), min(b, table.ends[i])))
            i += 1
        return out


def _more_than_the_years(amount: int, years: str) -> CalendarError:
    size = abs(amount)
    said = f"{_ONE_US * size}" if size <= _LONGEST_US else f"{size} microseconds"
    return CalendarError(f"{said} of business time is more than the years {years} hold")


def _merge(periods: list[Period]) -> list[Period]:
    """Sorted, disjoint periods covering the same instants (touching ones joined)."""
    out: list[Period] = []
    for s, e in sorted(periods):
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def _cut(periods: list[Period], closed: list[Period]) -> list[Period]:
    """``periods`` minus ``closed`` (both sorted and disjoint)."""
    if not closed:
        return periods
    out: list[Period] = []
    j = 0
    for s, e in periods:
        while j < len(closed) and closed[j][1] <= s:
            j += 1
        k = j
        while s < e and k < len(closed) and closed[k][0] < e:
            if closed[k][0] > s:
                out.append((s, closed[k][0]))
            s = max(s, closed[k][1])
            k += 1
        if s < e:
            out.append((s, e))
    return out


@lru_cache(maxsize=4096)
def _country_days(
    country: str, subdiv: str | None, year: int
) -> tuple[frozenset[date], frozenset[date]]:
    """Public holidays and weekend make-up workdays of a country in one year."""
    days = holidays_package.country_holidays(country, subdiv=subdiv, years=year)
    # weekend_workdays may also hold a few dates of other years: keep this year's.
    makeup = getattr(days, "weekend_workdays", ())
    return (
        frozenset(d for d in days if d.year == year),
        frozenset(d for d in makeup if d.year == year),
    )


@cache
def _country_last_year(country: str, subdiv: str | None) -> int:
    """The last year the holidays package knows a country's holidays for."""
    return int(holidays_package.country_holidays(country, subdiv=subdiv).end_year)


def _to_us(t: datetime, what: str = "t") -> int:
    """Epoch microseconds of an aware datetime (exact)."""
    try:
        return (t - _EPOCH) // _ONE_US
    except TypeError:
        if not isinstance(t, datetime):
            raise TypeError(f"{what} must be a datetime, got {type(t).__name__}") from None
        raise NaiveDatetimeError(
            f"{what} {t.isoformat()} has no timezone; give an aware datetime such as "
            "datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo('Asia/Shanghai'))"
        ) from None


def _epoch_us(t: datetime) -> int:
    return (t - _EPOCH) // _ONE_US


def epoch_us(t: datetime) -> int:
    """Epoch microseconds of an aware datetime, as :meth:`Calendar.add_from_epoch` takes."""
    return _to_us(t)


def _utc(us: int) -> datetime:
    return _EPOCH + _ONE_US * us


def _iso(us: int, zone: ZoneInfo) -> str:
    try:
        return _utc(us).astimezone(zone).isoformat()
    except OverflowError:
        return f"{us} µs after the epoch"


def _local_year(us: int, zone: ZoneInfo) -> int:
    try:
        return _utc(us).astimezone(zone).year
    except OverflowError:
        return 1 if us < 0 else 9999


# -- parsing and validating specs ------------------------------------------------


def _parse_spec(spec: Mapping[str, Any]) -> CalendarDefinition:
    if not isinstance(spec, Mapping):
        raise CalendarError(f"calendar: expected a mapping, got {type(spec).__name__}")
    for key in spec:
        if key not in _SPEC_KEYS:
            raise CalendarError(f"{key}: unknown key; expected one of {', '.join(_SPEC_KEYS)}")
    always = spec.get("always", False)
    if not isinstance(always, bool):
        raise CalendarError(f"always: expected true or false, got {always!r}")
    if always and spec.get("hours"):
        raise CalendarError("hours: give either always: true or hours, not both")
    if "timezone" not in spec and not always:
        raise CalendarError("timezone: required; give an IANA name such as Europe/Paris")
    timezone = _parse_timezone(spec.get("timezone", "UTC"))
    if always:
        weekly: tuple[tuple[Span, ...], ...] = (((0, _DAY_MINUTES),),) * 7
    else:
        weekly = _parse_weekly(spec.get("hours") or {})
    usual = next((spans for spans in weekly if spans), ())
    holidays, countries = _parse_holidays(spec.get("holidays") or [])
    workdays = _parse_workdays(spec.get("workdays") or [], usual)
    for day, _ in workdays:
        if day in holidays:
            raise CalendarError(
                f"workdays.{day}: {day} is also listed in holidays; a date can't be both"
            )
    special = _parse_dated_spans(spec.get("special_hours") or {}, "special_hours", allow_empty=True)
    if not any(weekly) and not workdays and not any(spans for _, spans in special):
        raise CalendarError(
            "hours: the calendar has no working time at all; give hours for at least one weekday"
        )
    return CalendarDefinition(
        timezone=timezone,
        weekly=weekly,
        holidays=tuple(sorted(holidays)),
        countries=countries,
        workdays=workdays,
        special_hours=special,
        closed=_parse_closed(spec.get("closed") or []),
    )


def _parse_timezone(name: Any) -> str:
    if not isinstance(name, str):
        raise CalendarError(f"timezone: expected an IANA name such as Europe/Paris, got {name!r}")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CalendarError(
            f"timezone: unknown timezone {name!r}; use an IANA name such as Europe/Paris"
        ) from None
    return name


def _parse_weekly(hours: Any) -> tuple[tuple[Span, ...], ...]:
    if not isinstance(hours, Mapping):
        raise CalendarError(
            f'hours: expected a mapping such as {{"mon-fri": ["09:00-17:00"]}}, got {hours!r}'
        )
    week: list[tuple[Span, ...]] = [()] * 7
    given_by: dict[int, str] = {}
    # (start, end, path, text) of every span in week minutes, Monday 00:00 = 0.
    placed: list[tuple[int, int, str, str]] = []
    for key, value in hours.items():
        path = f"hours.{key}"
        spans = _parse_spans(value, path)
        for day in _weekdays(key, path):
            if day in given_by:
                raise CalendarError(f"{path}: {WEEKDAYS[day]} is already given by {given_by[day]}")
            given_by[day] = path
            week[day] = spans
            for i, (s, e) in enumerate(spans):
                at, text = f"{path}[{i}]", _format_span((s, e))
                s, e = s + day * _DAY_MINUTES, e + day * _DAY_MINUTES
                placed.append((s, min(e, _WEEK_MINUTES), at, text))
                if e > _WEEK_MINUTES:  # Sunday night into Monday
                    placed.append((0, e - _WEEK_MINUTES, at, text))
    _check_overlaps(placed)
    return tuple(week)


def _weekdays(key: Any, path: str) -> list[int]:
    names = [name.strip() for name in key.lower().split("-")] if isinstance(key, str) else []
    if len(names) not in (1, 2) or any(name not in WEEKDAYS for name in names):
        raise CalendarError(
            f"{path}: unknown weekday {key!r}; use mon, tue, wed, thu, fri, sat, sun "
            "or a range such as mon-fri"
        )
    first, last = WEEKDAYS.index(names[0]), WEEKDAYS.index(names[-1])
    return [(first + i) % 7 for i in range((last - first) % 7 + 1)]


def _parse_spans(value: Any, path: str, allow_empty: bool = True) -> tuple[Span, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise CalendarError(
            f'{path}: expected a list of spans such as ["09:00-17:00"], got {value!r}'
        )
    if not value and not allow_empty:
        raise CalendarError(
            f"{path}: a workday needs hours; close a date with holidays or special_hours"
        )
    spans = [
        (_parse_span(text, f"{path}[{i}]"), f"{path}[{i}]", text) for i, text in enumerate(value)
    ]
    _check_overlaps([(s, e, at, text) for (s, e), at, text in spans])
    return tuple(sorted(span for span, _, _ in spans))


def _parse_span(text: Any, path: str) -> Span:
    match = _SPAN_RE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise CalendarError(f"{path}: {_quote(text)} is not a valid span; use HH:MM-HH:MM")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2):
        raise CalendarError(f"{path}: {_quote(text)} is not a valid span; use HH:MM-HH:MM")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start == end:
        raise CalendarError(f"{path}: {_quote(text)} is empty; use 00:00-24:00 for a whole day")
    if end < start:  # runs past midnight into the next date
        end += _DAY_MINUTES
    return start, end


def _check_overlaps(placed: list[tuple[int, int, str, str]]) -> None:
    latest: tuple[int, int, str, str] | None = None
    for span in sorted(placed):
        if latest is not None and span[0] < latest[1]:
            raise CalendarError(f'{span[2]}: "{span[3]}" overlaps {latest[2]} "{latest[3]}"')
        if latest is None or span[1] > latest[1]:
            latest = span


def _parse_date(value: Any, path: str) -> date:
    if isinstance(value, datetime):
        raise CalendarError(f"{path}: {value.isoformat()} is a datetime; give a date (YYYY-MM-DD)")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise CalendarError(f"{path}: {value!r} is not a date; use YYYY-MM-DD")


def _parse_holidays(items: Any) -> tuple[set[date], tuple[tuple[str, str | None], ...]]:
    if isinstance(items, str) or not isinstance(items, list | tuple):
        raise CalendarError(
            f"holidays: expected a list of dates and {{country: ...}} mappings, got {items!r}"
        )
    dates: set[date] = set()
    countries: list[tuple[str, str | None]] = []
    for i, item in enumerate(items):
        path = f"holidays[{i}]"
        if not isinstance(item, Mapping):
            dates.add(_parse_date(item, path))
            continue
        for key in item:
            if key not in ("country", "subdiv", "dates"):
                raise CalendarError(
                    f"{path}.{key}: unknown key; expected one of country, subdiv, dates"
                )
        listed = item.get("dates") or []
        if isinstance(listed, str) or not isinstance(listed, list | tuple):
            raise CalendarError(f"{path}.dates: expected a list of dates, got {listed!r}")
        dates.update(_parse_date(d, f"{path}.dates[{j}]") for j, d in enumerate(listed))
        if item.get("country") is not None:
            pair = _parse_country(item["country"], item.get("subdiv"), path)
            if pair not in countries:
                countries.append(pair)
        elif item.get("subdiv") is not None:
            raise CalendarError(f"{path}.subdiv: a subdivision needs a country")
        elif not listed:
            raise CalendarError(f"{path}: give a country code and/or dates")
    return dates, tuple(countries)


def _parse_country(country: Any, subdiv: Any, path: str) -> tuple[str, str | None]:
    supported = holidays_package.list_supported_countries()
    code = country.strip().upper() if isinstance(country, str) else None
    if code not in supported:
        raise CalendarError(
            f"{path}.country: unknown country code {country!r}; use an ISO 3166 code "
            "the holidays package knows, such as CN, FR or US"
        )
    if subdiv is None:
        return code, None
    sub = str(subdiv).strip()
    if sub not in supported[code] and sub.upper() not in supported[code]:
        raise CalendarError(
            f"{path}.subdiv: {subdiv!r} is not a subdivision of {code}; "
            f"known: {', '.join(supported[code])}"
        )
    return code, sub if sub in supported[code] else sub.upper()


def _parse_workdays(
    value: Any, usual: tuple[Span, ...]
) -> tuple[tuple[date, tuple[Span, ...]], ...]:
    if isinstance(value, Mapping):
        return _parse_dated_spans(value, "workdays", allow_empty=False)
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise CalendarError(
            f"workdays: expected a list of dates or a mapping of date to spans, got {value!r}"
        )
    days = {_parse_date(item, f"workdays[{i}]") for i, item in enumerate(value)}
    if days and not usual:
        raise CalendarError(
            "workdays: the calendar has no weekday hours to work these dates with; "
            'give their hours as a mapping, e.g. {"2026-02-14": ["09:00-18:00"]}'
        )
    return tuple((day, usual) for day in sorted(days))


def _parse_dated_spans(
    value: Any, key: str, allow_empty: bool
) -> tuple[tuple[date, tuple[Span, ...]], ...]:
    if not isinstance(value, Mapping):
        raise CalendarError(
            f'{key}: expected a mapping of date to spans, e.g. {{"2026-12-24": ["09:00-13:00"]}}'
        )
    out: dict[date, tuple[Span, ...]] = {}
    for raw_day, spans in value.items():
        path = f"{key}.{raw_day.isoformat() if isinstance(raw_day, date) else raw_day}"
        day = _parse_date(raw_day, path)
        if day in out:
            raise CalendarError(f"{path}: {day} is given twice")
        out[day] = _parse_spans(spans, path, allow_empty)
    return tuple(sorted(out.items()))


def _parse_closed(items: Any) -> tuple[tuple[datetime, datetime], ...]:
    if isinstance(items, str) or not isinstance(items, list | tuple):
        raise CalendarError(f"closed: expected a list of [start, end] pairs, got {items!r}")
    periods: list[Period] = []
    for i, pair in enumerate(items):
        if isinstance(pair, str) or not isinstance(pair, list | tuple) or len(pair) != 2:
            raise CalendarError(f"closed[{i}]: expected a [start, end] pair, got {pair!r}")
        start, end = (_parse_instant(t, f"closed[{i}][{j}]") for j, t in enumerate(pair))
        if end < start:
            raise CalendarError(f"closed[{i}]: end {pair[1]} is before start {pair[0]}")
        if end > start:
            periods.append((start, end))
    return tuple((_utc(s), _utc(e)) for s, e in _merge(periods))


def _parse_instant(value: Any, path: str) -> int:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise CalendarError(
                f"{path}: {value!r} is not an instant; use ISO 8601 with an offset"
            ) from None
    if not isinstance(value, datetime):
        raise CalendarError(f"{path}: {value!r} is not an instant; use ISO 8601 with an offset")
    return _to_us(value, path)


def _quote(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _format_span(span: Span) -> str:
    start, end = span
    end = end - _DAY_MINUTES if end > _DAY_MINUTES else end
    return f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


def _format_spans(spans: tuple[Span, ...]) -> list[str]:
    return [_format_span(span) for span in spans]
