"""Calendar specs: what is accepted, and the error each mistake gets."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from slaengine.calendar import Calendar
from slaengine.errors import CalendarError

PARIS = ZoneInfo("Europe/Paris")


def spec(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"timezone": "Europe/Paris", "hours": {"mon-fri": ["09:00-17:00"]}}
    return {**base, **changes}


def error_of(bad: Any) -> str:
    with pytest.raises(CalendarError) as info:
        Calendar.from_spec(bad)
    return str(info.value)


# -- accepted -------------------------------------------------------------------


def test_a_yaml_spec_with_unquoted_dates_is_accepted() -> None:
    text = """
    timezone: Asia/Shanghai
    hours:
      mon-fri: ["09:00-12:00", "13:30-18:00"]
    holidays:
      - 2026-10-01
      - {country: CN, subdiv: null}
    workdays: [2026-09-27]
    special_hours:
      2026-12-31: ["09:00-12:00"]
    """
    cal = Calendar.from_spec(yaml.safe_load(text))
    assert cal.spec["holidays"] == ["2026-10-01", {"country": "CN", "subdiv": None}]
    assert cal.spec["workdays"] == {"2026-09-27": ["09:00-12:00", "13:30-18:00"]}


def test_24_00_ends_a_day() -> None:
    cal = Calendar.from_spec(spec(hours={"sat": ["18:00-24:00"]}))
    assert cal.is_open(datetime(2026, 3, 7, 23, 59, tzinfo=PARIS))
    assert not cal.is_open(datetime(2026, 3, 8, 0, 0, tzinfo=PARIS))


def test_a_weekday_range_may_wrap_around_the_week() -> None:
    cal = Calendar.from_spec(spec(hours={"fri-mon": ["09:00-17:00"]}))
    assert sorted(cal.spec["hours"]) == ["fri", "mon", "sat", "sun"]


def test_a_holiday_mapping_may_list_dates() -> None:
    cal = Calendar.from_spec(spec(holidays=[{"dates": ["2026-05-11"]}]))
    assert not cal.is_open(datetime(2026, 5, 11, 10, tzinfo=PARIS))


def test_a_calendar_open_only_on_special_dates_is_valid() -> None:
    cal = Calendar.from_spec({"timezone": "UTC", "special_hours": {"2026-03-02": ["09:00-10:00"]}})
    assert cal.is_open(datetime(2026, 3, 2, 9, 30, tzinfo=ZoneInfo("UTC")))


# -- rejected, with the key path named ----------------------------------------------


def test_an_unknown_timezone_is_named() -> None:
    assert error_of(spec(timezone="Mars/Olympus")) == (
        "timezone: unknown timezone 'Mars/Olympus'; use an IANA name such as Europe/Paris"
    )


def test_a_missing_timezone_is_an_error() -> None:
    assert error_of({"hours": {"mon": ["09:00-17:00"]}}).startswith("timezone: required")


def test_an_hour_past_24_is_not_a_valid_span() -> None:
    bad = spec(hours={"mon": ["09:00-12:00", "25:00-26:00"]})
    assert error_of(bad) == 'hours.mon[1]: "25:00-26:00" is not a valid span; use HH:MM-HH:MM'


def test_hours_without_minutes_are_not_a_valid_span() -> None:
    bad = spec(hours={"mon-fri": ["9-17"]})
    assert error_of(bad) == 'hours.mon-fri[0]: "9-17" is not a valid span; use HH:MM-HH:MM'


def test_24_00_cannot_start_a_span() -> None:
    assert "is not a valid span" in error_of(spec(hours={"mon": ["24:00-06:00"]}))


def test_an_empty_span_is_an_error() -> None:
    assert error_of(spec(hours={"mon": ["09:00-09:00"]})) == (
        'hours.mon[0]: "09:00-09:00" is empty; use 00:00-24:00 for a whole day'
    )


def test_spans_given_as_a_string_instead_of_a_list_are_an_error() -> None:
    assert error_of(spec(hours={"mon": "09:00-17:00"})).startswith(
        "hours.mon: expected a list of spans"
    )


def test_overlapping_spans_on_a_day_are_an_error() -> None:
    bad = spec(hours={"mon": ["09:00-12:00", "11:00-14:00"]})
    assert error_of(bad) == 'hours.mon[1]: "11:00-14:00" overlaps hours.mon[0] "09:00-12:00"'


def test_a_night_shift_overlapping_the_next_mornings_span_is_an_error() -> None:
    bad = spec(hours={"mon": ["22:00-06:00"], "tue": ["05:00-09:00"]})
    assert error_of(bad) == 'hours.tue[0]: "05:00-09:00" overlaps hours.mon[0] "22:00-06:00"'


def test_a_sunday_night_shift_overlapping_monday_morning_is_an_error() -> None:
    bad = spec(hours={"sun": ["22:00-06:00"], "mon": ["05:00-09:00"]})
    assert "overlaps" in error_of(bad)


def test_a_weekday_given_twice_is_an_error() -> None:
    bad = spec(hours={"mon-fri": ["09:00-17:00"], "fri": ["10:00-12:00"]})
    assert error_of(bad) == "hours.fri: fri is already given by hours.mon-fri"


def test_an_unknown_weekday_is_an_error() -> None:
    assert error_of(spec(hours={"monday": ["09:00-17:00"]})).startswith(
        "hours.monday: unknown weekday 'monday'"
    )


def test_an_unknown_country_code_is_named() -> None:
    assert error_of(spec(holidays=[{"country": "XX"}])).startswith(
        "holidays[0].country: unknown country code 'XX'"
    )


def test_an_unknown_subdivision_is_named() -> None:
    assert error_of(spec(holidays=[{"country": "US", "subdiv": "ZZ"}])).startswith(
        "holidays[0].subdiv: 'ZZ' is not a subdivision of US"
    )


def test_a_malformed_holiday_date_is_named() -> None:
    assert error_of(spec(holidays=["2026-12-25", "25/12/2026"])) == (
        "holidays[1]: '25/12/2026' is not a date; use YYYY-MM-DD"
    )


def test_a_datetime_where_a_date_belongs_is_an_error() -> None:
    assert "is a datetime" in error_of(spec(holidays=[datetime(2026, 12, 25, 10)]))


def test_an_unknown_key_is_an_error() -> None:
    assert error_of(spec(holiday=["2026-12-25"])).startswith("holiday: unknown key")


def test_an_unknown_key_in_a_holiday_mapping_is_an_error() -> None:
    assert error_of(spec(holidays=[{"country": "FR", "region": "75"}])).startswith(
        "holidays[0].region: unknown key"
    )


def test_a_calendar_with_no_working_time_at_all_is_an_error() -> None:
    assert error_of({"timezone": "UTC", "hours": {}}).startswith(
        "hours: the calendar has no working time at all"
    )


def test_a_calendar_whose_special_hours_all_close_is_an_error() -> None:
    assert "no working time at all" in error_of(
        {"timezone": "UTC", "special_hours": {"2026-03-02": []}}
    )


def test_a_date_both_holiday_and_workday_is_an_error() -> None:
    bad = spec(holidays=["2026-03-07"], workdays=["2026-03-07"])
    assert error_of(bad) == (
        "workdays.2026-03-07: 2026-03-07 is also listed in holidays; a date can't be both"
    )


def test_a_workday_without_hours_is_an_error() -> None:
    assert error_of(spec(workdays={date(2026, 3, 7): []})).startswith(
        "workdays.2026-03-07: a workday needs hours"
    )


def test_listed_workdays_need_weekday_hours_to_borrow() -> None:
    bad = {
        "timezone": "UTC",
        "special_hours": {"2026-03-02": ["09:00-10:00"]},
        "workdays": ["2026-03-07"],
    }
    assert error_of(bad).startswith("workdays: the calendar has no weekday hours")


def test_always_with_hours_is_an_error() -> None:
    assert error_of(spec(always=True)) == "hours: give either always: true or hours, not both"


def test_a_string_other_than_always_is_an_error() -> None:
    assert error_of("office").startswith("calendar: 'office' is not a calendar")


def test_a_closed_interval_that_ends_before_it_starts_is_an_error() -> None:
    bad = spec(closed=[["2026-03-02T12:00:00+01:00", "2026-03-02T10:00:00+01:00"]])
    assert error_of(bad).startswith("closed[0]: end")
