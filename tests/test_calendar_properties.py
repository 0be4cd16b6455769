"""Calendar arithmetic properties, checked with hypothesis on several calendars."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slaengine.calendar import Calendar

US = timedelta(microseconds=1)


def utc(t: datetime) -> datetime:
    """In UTC: Python compares and subtracts datetimes of one zone by wall clock."""
    return t.astimezone(UTC)


CALENDARS = {
    "shanghai 5x8 with CN holidays": Calendar.from_spec(
        {
            "timezone": "Asia/Shanghai",
            "hours": {"mon-fri": ["09:00-17:00"]},
            "holidays": [{"country": "CN"}],
        }
    ),
    "new york lunch break and night shift": Calendar.from_spec(
        {
            "timezone": "America/New_York",
            "hours": {
                "mon-thu": ["09:00-12:00", "13:00-17:00", "22:00-02:00"],
                "fri": ["09:00-12:00", "13:00-17:00"],
                # Across the spring gap (2026-03-08) and the autumn repeat (2026-11-01).
                "sun": ["00:30-03:30"],
            },
            "holidays": [{"country": "US"}],
            "special_hours": {"2026-12-24": ["09:00-12:00"]},
        }
    ),
    "paris 7x24": Calendar.from_spec({"always": True, "timezone": "Europe/Paris"}),
}

calendars = st.sampled_from(list(CALENDARS.values()))
# Instants from 2025 to 2028, with microseconds, in UTC.
_LOW = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)
_HIGH = int(datetime(2029, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)
instants = st.integers(_LOW, _HIGH).map(lambda us: datetime(1970, 1, 1, tzinfo=UTC) + US * us)
# Up to 3,000 hours of business time, to the microsecond.
amounts = st.integers(0, 3_000 * 3_600 * 1_000_000).map(lambda us: US * us)

fast = settings(max_examples=150, deadline=None)


@fast
@given(calendars, instants, amounts)
def test_elapsed_from_the_start_to_the_due_time_is_the_amount(
    cal: Calendar, t: datetime, d: timedelta
) -> None:
    start = cal.next_open(t)
    assert cal.elapsed(start, cal.add(start, d)) == d


@fast
@given(calendars, instants, amounts)
def test_elapsed_from_any_start_to_the_due_time_is_the_amount(
    cal: Calendar, t: datetime, d: timedelta
) -> None:
    assert cal.elapsed(t, cal.add(t, d)) == d


@fast
@given(calendars, instants, amounts, amounts)
def test_add_is_monotonic_in_the_amount(
    cal: Calendar, t: datetime, d1: timedelta, d2: timedelta
) -> None:
    d1, d2 = min(d1, d2), max(d1, d2)
    assert utc(cal.add(t, d1)) <= utc(cal.add(t, d2))


@fast
@given(calendars, instants, instants, instants)
def test_elapsed_is_additive_over_split_points(
    cal: Calendar, a: datetime, b: datetime, c: datetime
) -> None:
    assert cal.elapsed(a, c) == cal.elapsed(a, b) + cal.elapsed(b, c)


@fast
@given(calendars, instants, amounts)
def test_add_negative_mirrors_add(cal: Calendar, t: datetime, d: timedelta) -> None:
    assert cal.elapsed(cal.add(t, -d), t) == d


@fast
@given(calendars, instants, amounts, amounts)
def test_add_back_then_forward_returns_to_an_instant_reached_by_adding(
    cal: Calendar, t: datetime, d0: timedelta, d: timedelta
) -> None:
    reached = cal.add(t, d0 + US)  # open time lies just before it
    d += US  # nonzero: adding zero means next_open, which is no mirror
    assert cal.add(cal.add(reached, -d), d) == reached


@fast
@given(calendars, instants, amounts)
def test_a_due_time_lies_in_or_just_after_working_time(
    cal: Calendar, t: datetime, d: timedelta
) -> None:
    due = utc(cal.add(t, d + US))
    assert cal.is_open(due - US)


@fast
@given(calendars, instants, instants, st.lists(st.tuples(instants, amounts), max_size=4))
def test_excluding_never_adds_time(
    cal: Calendar, a: datetime, b: datetime, cuts: list[tuple[datetime, timedelta]]
) -> None:
    cut = cal.excluding([(start, start + length) for start, length in cuts])
    a, b = min(a, b), max(a, b)
    assert cut.elapsed(a, b) <= cal.elapsed(a, b)


@fast
@given(calendars, instants, instants)
def test_periods_sum_to_elapsed(cal: Calendar, a: datetime, b: datetime) -> None:
    a, b = min(a, b), max(a, b)
    b = min(b, a + timedelta(days=60))
    total = sum((utc(end) - utc(start) for start, end in cal.periods(a, b)), timedelta(0))
    assert total == cal.elapsed(a, b)


# -- against a plain day-by-day reference ---------------------------------------------


def reference_elapsed(zone: ZoneInfo, weekly: dict[int, list[tuple[int, int]]], a, b) -> timedelta:
    """Business time in [a, b) by converting each date's wall-clock spans (fold=0)."""
    total = timedelta(0)
    day = a.astimezone(zone).date() - timedelta(days=1)
    while day <= b.astimezone(zone).date():
        for start, end in weekly.get(day.weekday(), []):
            midnight = datetime(day.year, day.month, day.day)
            s = (midnight + timedelta(minutes=start)).replace(tzinfo=zone)
            e = (midnight + timedelta(minutes=end)).replace(tzinfo=zone)
            s, e = max(s, a), min(e, b)
            if e > s:
                total += e.astimezone(UTC) - s.astimezone(UTC)
        day += timedelta(days=1)
    return total


NIGHT_AND_LUNCH = {  # minutes after midnight; 22:00-02:00 ends the next date
    0: [(540, 720), (810, 1080), (1320, 1560)],
    1: [(540, 720), (810, 1080), (1320, 1560)],
    2: [(540, 720), (810, 1080)],
    5: [(0, 1440)],
}


REFERENCE_CALENDARS = {
    zone: Calendar.from_spec(
        {
            "timezone": zone,
            "hours": {
                "mon-tue": ["09:00-12:00", "13:30-18:00", "22:00-02:00"],
                "wed": ["09:00-12:00", "13:30-18:00"],
                "sat": ["00:00-24:00"],
            },
        }
    )
    for zone in ("Europe/Paris", "America/New_York")
}


@pytest.mark.parametrize("zone", sorted(REFERENCE_CALENDARS))
@settings(max_examples=100, deadline=None)
@given(a=instants, length=st.integers(0, 40 * 86_400 * 1_000_000))
def test_elapsed_agrees_with_a_day_by_day_reference(zone: str, a: datetime, length: int) -> None:
    b = a + US * length
    expected = reference_elapsed(ZoneInfo(zone), NIGHT_AND_LUNCH, a, b)
    assert REFERENCE_CALENDARS[zone].elapsed(a, b) == expected


@pytest.mark.parametrize(
    "zone, day", [("Europe/Paris", date(2026, 3, 29)), ("America/New_York", date(2026, 11, 1))]
)
def test_reference_and_calendar_agree_on_dst_days(zone: str, day: date) -> None:
    cal = Calendar.from_spec({"timezone": zone, "hours": {"sun": ["00:30-04:30"]}})
    z = ZoneInfo(zone)
    a = datetime(day.year, day.month, day.day, tzinfo=z)
    b = a + timedelta(days=1)
    assert cal.elapsed(a, b) == reference_elapsed(z, {6: [(30, 270)]}, a, b)


def _add_days_by_stepping(cal: Calendar, t: datetime, n: int) -> datetime:
    """add_days as its definition reads: step date by date, skipping dates with no hours."""
    local = t.astimezone(cal.zone)
    day, step = local.date(), (1 if n > 0 else -1)
    for _ in range(abs(n)):
        day += timedelta(days=step)
        while not cal.periods(*_local_day(cal, day)):
            day += timedelta(days=step)
    wall = datetime.combine(day, local.time(), cal.zone).replace(fold=0)
    return cal.next_open(wall)


def _local_day(cal: Calendar, day: date) -> tuple[datetime, datetime]:
    # A night span belongs to the evening it starts: its date's periods start on it.
    start = datetime.combine(day, datetime.min.time(), cal.zone)
    return start, start + timedelta(days=1)


WITH_MAINTENANCE = CALENDARS["shanghai 5x8 with CN holidays"].excluding(
    [
        (
            datetime(2026, 5, 6, 0, 0, tzinfo=ZoneInfo("Asia/Shanghai")),
            datetime(2026, 5, 8, 0, 0, tzinfo=ZoneInfo("Asia/Shanghai")),
        )
    ]
)


NEW_YORK = CALENDARS["new york lunch break and night shift"]
_NY = ZoneInfo("America/New_York")


@fast
@given(
    st.sampled_from([CALENDARS["shanghai 5x8 with CN holidays"], WITH_MAINTENANCE]),
    instants,
    st.integers(-400, 400).filter(lambda n: n != 0),
)
def test_add_days_agrees_with_stepping_date_by_date(cal: Calendar, t: datetime, n: int) -> None:
    assert utc(cal.add_days(t, n)) == utc(_add_days_by_stepping(cal, t, n))


def _add_days_by_wall_clock(cal: Calendar, t: datetime, n: int) -> datetime:
    """add_days by its definition: the same wall time (fold=0) on the n-th working date.

    The working dates themselves come from the calendar (a night span belongs
    to the evening it starts, which the stepping reference above does not
    model); this checks the wall-clock arithmetic, DST days included.
    """
    local = t.astimezone(cal.zone)
    day = cal._timeline.nth_working_date(local.date(), n)
    return cal.next_open(datetime.combine(day, local.time(), cal.zone).replace(fold=0))


@fast
@given(instants, st.integers(-60, 60).filter(lambda n: n != 0))
def test_add_days_keeps_the_wall_clock_time_in_a_dst_zone(t: datetime, n: int) -> None:
    assert utc(NEW_YORK.add_days(t, n)) == utc(_add_days_by_wall_clock(NEW_YORK, t, n))


@pytest.mark.parametrize(
    "start",
    [
        # The next working date is a DST change (Sundays are working dates here):
        datetime(2026, 3, 7, 2, 30, tzinfo=_NY),  # lands at 02:30 on a day without it
        datetime(2026, 3, 7, 1, 15, tzinfo=_NY),
        datetime(2026, 3, 7, 23, 45, tzinfo=_NY),
        datetime(2026, 3, 7, 3, 15, tzinfo=_NY),  # 03:15 is open on the Sunday after the change
        datetime(2026, 10, 31, 3, 0, tzinfo=_NY),
        datetime(2026, 10, 31, 1, 30, tzinfo=_NY),  # lands at 01:30, which happens twice
        datetime(2026, 10, 31, 0, 45, tzinfo=_NY),
        datetime(2026, 10, 31, 22, 10, tzinfo=_NY),
    ],
)
@pytest.mark.parametrize("n", [1, -1, 2])
def test_add_days_across_a_clock_change(start: datetime, n: int) -> None:
    assert utc(NEW_YORK.add_days(start, n)) == utc(_add_days_by_wall_clock(NEW_YORK, start, n))
