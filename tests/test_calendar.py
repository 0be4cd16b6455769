"""Calendar arithmetic, rule by rule, on hand-worked examples."""

from __future__ import annotations

import pickle
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest

from slaengine.calendar import Calendar
from slaengine.errors import CalendarError, NaiveDatetimeError

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
SHANGHAI = ZoneInfo("Asia/Shanghai")
H = timedelta(hours=1)


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)


def new_york(*args: int) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK)


def shanghai(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


@pytest.fixture(scope="module")
def office() -> Calendar:
    """Paris, Monday to Friday 09:00-17:00; 2026-03-02 is a Monday."""
    return Calendar.from_spec({"timezone": "Europe/Paris", "hours": {"mon-fri": ["09:00-17:00"]}})


@pytest.fixture(scope="module")
def china() -> Calendar:
    """Shanghai, Monday to Friday 09:00-18:00, official CN holidays and make-up workdays."""
    return Calendar.from_spec(
        {
            "timezone": "Asia/Shanghai",
            "hours": {"mon-fri": ["09:00-18:00"]},
            "holidays": [{"country": "CN"}],
        }
    )


# -- open and closed ----------------------------------------------------------


def test_is_open_at_the_opening_instant(office: Calendar) -> None:
    assert office.is_open(paris(2026, 3, 2, 9))


def test_is_closed_at_the_closing_instant(office: Calendar) -> None:
    assert not office.is_open(paris(2026, 3, 2, 17))


def test_is_open_just_before_closing(office: Calendar) -> None:
    assert office.is_open(paris(2026, 3, 2, 16, 59, 59, 999999))


def test_is_closed_on_the_weekend(office: Calendar) -> None:
    assert not office.is_open(paris(2026, 3, 7, 12))


def test_next_open_of_an_open_instant_is_itself(office: Calendar) -> None:
    assert office.next_open(paris(2026, 3, 2, 10, 30)) == paris(2026, 3, 2, 10, 30)


def test_next_open_at_closing_is_the_next_mornings_opening(office: Calendar) -> None:
    assert office.next_open(paris(2026, 3, 2, 17)) == paris(2026, 3, 3, 9)


def test_next_open_on_friday_evening_is_monday_morning(office: Calendar) -> None:
    assert office.next_open(paris(2026, 3, 6, 18)) == paris(2026, 3, 9, 9)


def test_previous_close_of_an_open_instant_is_itself(office: Calendar) -> None:
    assert office.previous_close(paris(2026, 3, 2, 9)) == paris(2026, 3, 2, 9)


def test_previous_close_on_the_weekend_is_friday_closing(office: Calendar) -> None:
    assert office.previous_close(paris(2026, 3, 8, 12)) == paris(2026, 3, 6, 17)


def test_previous_close_at_closing_is_that_closing(office: Calendar) -> None:
    assert office.previous_close(paris(2026, 3, 2, 17)) == paris(2026, 3, 2, 17)


# -- add ----------------------------------------------------------------------


def test_add_within_one_day(office: Calendar) -> None:
    assert office.add(paris(2026, 3, 2, 10), 3 * H) == paris(2026, 3, 2, 13)


def test_add_from_opening_that_runs_out_at_closing_is_due_at_closing(office: Calendar) -> None:
    assert office.add(paris(2026, 3, 2, 9), 8 * H) == paris(2026, 3, 2, 17)


def test_add_from_the_closing_instant_counts_from_the_next_opening(office: Calendar) -> None:
    assert office.add(paris(2026, 3, 2, 17), H) == paris(2026, 3, 3, 10)


def test_add_from_outside_hours_counts_from_the_next_opening(office: Calendar) -> None:
    assert office.add(paris(2026, 3, 7, 10), H) == paris(2026, 3, 9, 10)


def test_add_carries_over_the_weekend(office: Calendar) -> None:
    assert office.add(paris(2026, 3, 6, 16), 2 * H) == paris(2026, 3, 9, 10)


def test_add_zero_when_open_is_the_start_itself(office: Calendar) -> None:
    assert office.add(paris(2026, 3, 2, 11), timedelta(0)) == paris(2026, 3, 2, 11)


def test_add_zero_when_closed_is_the_next_opening(office: Calendar) -> None:
    assert office.add(paris(2026, 3, 2, 20), timedelta(0)) == paris(2026, 3, 3, 9)


def test_add_negative_goes_back_over_the_weekend(office: Calendar) -> None:
    assert office.add(paris(2026, 3, 9, 10), -2 * H) == paris(2026, 3, 6, 16)


def test_add_negative_that_runs_out_at_an_opening_is_that_opening(office: Calendar) -> None:
    assert office.add(paris(2026, 3, 3, 11), -2 * H) == paris(2026, 3, 3, 9)


def test_add_negative_from_outside_hours_counts_from_the_previous_closing(
    office: Calendar,
) -> None:
    assert office.add(paris(2026, 3, 7, 10), -H) == paris(2026, 3, 6, 16)


def test_add_keeps_microseconds(office: Calendar) -> None:
    start = paris(2026, 3, 2, 16, 59, 59, 250000)
    assert office.add(start, timedelta(seconds=1)) == paris(2026, 3, 3, 9, 0, 0, 250000)


def test_add_returns_the_calendars_zone_for_a_utc_input(office: Calendar) -> None:
    due = office.add(datetime(2026, 3, 2, 8, tzinfo=UTC), H)
    assert due.tzinfo == PARIS
    assert due == paris(2026, 3, 2, 10)


def test_add_rejects_a_naive_datetime(office: Calendar) -> None:
    with pytest.raises(NaiveDatetimeError, match="has no timezone"):
        office.add(datetime(2026, 3, 2, 9), H)


def test_add_a_year_of_business_time(office: Calendar) -> None:
    # 2027-03-01 is a Monday; 52 weeks of 5 x 8 hours from a Monday opening.
    assert office.add(paris(2026, 3, 2, 9), 52 * 40 * H) == paris(2027, 2, 26, 17)


# -- elapsed and periods --------------------------------------------------------


def test_elapsed_counts_only_open_time(office: Calendar) -> None:
    assert office.elapsed(paris(2026, 3, 6, 16), paris(2026, 3, 9, 10)) == 2 * H


def test_elapsed_is_negative_when_the_end_is_before_the_start(office: Calendar) -> None:
    assert office.elapsed(paris(2026, 3, 9, 10), paris(2026, 3, 6, 16)) == -2 * H


def test_elapsed_within_closed_time_is_zero(office: Calendar) -> None:
    assert office.elapsed(paris(2026, 3, 7, 1), paris(2026, 3, 8, 23)) == timedelta(0)


def test_periods_lists_open_periods_clipped_to_the_range(office: Calendar) -> None:
    assert office.periods(paris(2026, 3, 6, 12), paris(2026, 3, 9, 10)) == [
        (paris(2026, 3, 6, 12), paris(2026, 3, 6, 17)),
        (paris(2026, 3, 9, 9), paris(2026, 3, 9, 10)),
    ]


def test_periods_of_an_empty_range_is_empty(office: Calendar) -> None:
    assert office.periods(paris(2026, 3, 2, 12), paris(2026, 3, 2, 12)) == []


# -- several spans a day: lunch break ---------------------------------------------


@pytest.fixture(scope="module")
def lunch() -> Calendar:
    return Calendar.from_spec(
        {"timezone": "Europe/Paris", "hours": {"mon-fri": ["09:00-12:00", "13:30-18:00"]}}
    )


def test_lunch_break_is_closed(lunch: Calendar) -> None:
    assert not lunch.is_open(paris(2026, 3, 2, 12, 30))


def test_add_skips_the_lunch_break(lunch: Calendar) -> None:
    assert lunch.add(paris(2026, 3, 2, 11), 2 * H) == paris(2026, 3, 2, 14, 30)


def test_add_that_runs_out_at_lunch_is_due_when_lunch_starts(lunch: Calendar) -> None:
    assert lunch.add(paris(2026, 3, 2, 11), H) == paris(2026, 3, 2, 12)


def test_a_lunch_break_day_holds_the_sum_of_its_spans(lunch: Calendar) -> None:
    assert lunch.elapsed(paris(2026, 3, 2), paris(2026, 3, 3)) == 7.5 * H


# -- night shift across midnight ------------------------------------------------------


@pytest.fixture(scope="module")
def night() -> Calendar:
    """Monday to Friday nights, 22:00 to 06:00 the next morning (2026-03-02 is a Monday)."""
    return Calendar.from_spec({"timezone": "Europe/Paris", "hours": {"mon-fri": ["22:00-06:00"]}})


def test_night_shift_is_open_after_midnight_the_next_morning(night: Calendar) -> None:
    assert night.is_open(paris(2026, 3, 3, 5, 59))


def test_night_shift_is_closed_at_its_morning_end(night: Calendar) -> None:
    assert not night.is_open(paris(2026, 3, 3, 6))


def test_friday_night_shift_runs_into_saturday_morning(night: Calendar) -> None:
    assert night.is_open(paris(2026, 3, 7, 3))


def test_no_shift_begins_on_saturday_night(night: Calendar) -> None:
    assert not night.is_open(paris(2026, 3, 7, 23))


def test_monday_morning_before_the_first_shift_is_closed(night: Calendar) -> None:
    assert not night.is_open(paris(2026, 3, 2, 3))


def test_add_through_midnight_on_the_night_shift(night: Calendar) -> None:
    assert night.add(paris(2026, 3, 2, 23), 4 * H) == paris(2026, 3, 3, 3)


def test_add_a_whole_night_shift_is_due_at_its_morning_end(night: Calendar) -> None:
    assert night.add(paris(2026, 3, 2, 22), 8 * H) == paris(2026, 3, 3, 6)


def test_a_holiday_closes_the_night_shift_that_starts_on_it() -> None:
    cal = Calendar.from_spec(
        {
            "timezone": "Europe/Paris",
            "hours": {"mon-fri": ["22:00-06:00"]},
            "holidays": ["2026-03-02"],
        }
    )
    assert not cal.is_open(paris(2026, 3, 3, 2))
    assert cal.is_open(paris(2026, 3, 3, 23))


def test_a_holiday_keeps_the_morning_part_of_the_previous_nights_shift() -> None:
    cal = Calendar.from_spec(
        {
            "timezone": "Europe/Paris",
            "hours": {"mon-fri": ["22:00-06:00"]},
            "holidays": ["2026-03-03"],
        }
    )
    assert cal.is_open(paris(2026, 3, 3, 2))


# -- holidays -----------------------------------------------------------------------


def test_an_explicit_holiday_is_closed() -> None:
    cal = Calendar.from_spec(
        {
            "timezone": "Europe/Paris",
            "hours": {"mon-fri": ["09:00-17:00"]},
            "holidays": ["2026-12-25"],
        }
    )
    assert not cal.is_open(paris(2026, 12, 25, 10))


def test_add_skips_an_explicit_holiday() -> None:
    cal = Calendar.from_spec(
        {
            "timezone": "Europe/Paris",
            "hours": {"mon-fri": ["09:00-17:00"]},
            "holidays": ["2026-12-25"],
        }
    )
    assert cal.add(paris(2026, 12, 24, 16), 2 * H) == paris(2026, 12, 28, 10)


def test_holidays_accept_date_objects_as_yaml_gives_them() -> None:
    cal = Calendar.from_spec(
        {
            "timezone": "Europe/Paris",
            "hours": {"mon-fri": ["09:00-17:00"]},
            "holidays": [date(2026, 12, 25)],
        }
    )
    assert not cal.is_open(paris(2026, 12, 25, 10))


def test_country_holidays_close_public_holidays() -> None:
    cal = Calendar.from_spec(
        {
            "timezone": "Europe/Paris",
            "hours": {"mon-fri": ["09:00-17:00"]},
            "holidays": [{"country": "FR"}],
        }
    )
    assert not cal.is_open(paris(2026, 7, 14, 10))  # Bastille Day, a Tuesday


def test_country_holidays_are_known_for_any_year_without_listing_it() -> None:
    cal = Calendar.from_spec(
        {
            "timezone": "Europe/Paris",
            "hours": {"mon-fri": ["09:00-17:00"]},
            "holidays": [{"country": "FR"}],
        }
    )
    assert not cal.is_open(paris(2087, 7, 14, 10))  # a Monday
    assert not cal.is_open(paris(1969, 12, 25, 10))  # a Thursday


def test_a_subdivision_adds_its_regional_holidays() -> None:
    spec = {"timezone": "America/Los_Angeles", "hours": {"mon-fri": ["09:00-17:00"]}}
    federal = Calendar.from_spec({**spec, "holidays": [{"country": "US"}]})
    california = Calendar.from_spec({**spec, "holidays": [{"country": "US", "subdiv": "CA"}]})
    day_after_thanksgiving = datetime(2026, 11, 27, 10, tzinfo=ZoneInfo("America/Los_Angeles"))
    assert federal.is_open(day_after_thanksgiving)
    assert not california.is_open(day_after_thanksgiving)


def test_country_holidays_beyond_the_holidays_package_years_are_refused() -> None:
    cal = Calendar.from_spec(
        {
            "timezone": "Europe/Paris",
            "hours": {"mon-fri": ["09:00-17:00"]},
            "holidays": [{"country": "FR"}],
        }
    )
    with pytest.raises(CalendarError, match="holidays package"):
        cal.is_open(paris(2150, 7, 14, 10))


def test_is_holiday_is_true_on_a_listed_holiday() -> None:
    cal = Calendar.from_spec(
        {
            "timezone": "Europe/Paris",
            "hours": {"mon-fri": ["09:00-17:00"]},
            "holidays": ["2026-12-25"],
        }
    )
    assert cal.is_holiday(paris(2026, 12, 25, 23))


def test_is_holiday_is_true_on_a_country_holiday(china: Calendar) -> None:
    assert china.is_holiday(shanghai(2026, 2, 17, 3))


def test_is_holiday_is_false_on_an_ordinary_weekend(office: Calendar) -> None:
    assert not office.is_holiday(paris(2026, 3, 7, 12))


def test_is_holiday_uses_the_calendars_local_date(china: Calendar) -> None:
    # 2026-02-16 17:00 UTC is 2026-02-17 01:00 in Shanghai; 2026-02-15 is no holiday.
    assert china.is_holiday(datetime(2026, 2, 16, 17, tzinfo=UTC))
    assert not china.is_holiday(shanghai(2026, 2, 15, 12))


# -- China: official holidays and make-up workdays ----------------------------------------


def test_the_holidays_package_agrees_with_the_cn_examples() -> None:
    cn = holidays.country_holidays("CN", years=2026)
    assert date(2026, 2, 14) in cn.weekend_workdays
    assert all(date(2026, 2, d) in cn for d in (16, 17, 18, 19, 20, 23))


def test_cn_make_up_saturday_is_open(china: Calendar) -> None:
    assert china.is_open(shanghai(2026, 2, 14, 10))


def test_cn_make_up_saturday_has_the_weekday_hours(china: Calendar) -> None:
    assert china.elapsed(shanghai(2026, 2, 14), shanghai(2026, 2, 15)) == 9 * H


@pytest.mark.parametrize("day", [16, 17, 18, 19, 20, 23])
def test_cn_spring_festival_weekdays_are_closed(china: Calendar, day: int) -> None:
    assert not china.is_open(shanghai(2026, 2, day, 10))


def test_add_on_friday_evening_continues_on_the_cn_make_up_saturday(china: Calendar) -> None:
    assert china.add(shanghai(2026, 2, 13, 17), 2 * H) == shanghai(2026, 2, 14, 10)


def test_add_skips_the_whole_cn_spring_festival(china: Calendar) -> None:
    assert china.add(shanghai(2026, 2, 14, 17), 2 * H) == shanghai(2026, 2, 24, 10)


def test_make_up_workdays_use_the_first_weekday_with_hours() -> None:
    cal = Calendar.from_spec(
        {
            "timezone": "Asia/Shanghai",
            "hours": {"mon": ["08:00-12:00"], "tue-fri": ["09:00-18:00"], "sat": ["10:00-11:00"]},
            "holidays": [{"country": "CN"}],
        }
    )
    assert cal.periods(shanghai(2026, 2, 14), shanghai(2026, 2, 15)) == [
        (shanghai(2026, 2, 14, 8), shanghai(2026, 2, 14, 12))
    ]


# -- extra workdays and special hours ---------------------------------------------------------


def test_a_listed_workday_is_worked_with_the_usual_hours() -> None:
    cal = Calendar.from_spec(
        {
            "timezone": "Europe/Paris",
            "hours": {"mon-fri": ["09:00-17:00"]},
            "workdays": ["2026-03-07"],
        }
    )
    assert cal.periods(paris(2026, 3, 7), paris(2026, 3, 8)) == [
        (paris(2026, 3, 7, 9), paris(2026, 3, 7, 17))
    ]


def test_a_workday_given_with_spans_uses_those_spans() -> None:
    cal = Calendar.from_spec(
        {
            "timezone": "Europe/Paris",
            "hours": {"mon-fri": ["09:00-17:00"]},
            "workdays": {"2026-03-07": ["10:00-12:00"]},
        }
    )
    assert cal.elapsed(paris(2026, 3, 7), paris(2026, 3, 8)) == 2 * H


def test_a_listed_workday_overrides_a_country_holiday() -> None:
    cal = Calendar.from_spec(
        {
            "timezone": "Europe/Paris",
            "hours": {"mon-fri": ["09:00-17:00"]},
            "holidays": [{"country": "FR"}],
            "workdays": ["2026-07-14"],
        }
    )
    assert cal.is_open(paris(2026, 7, 14, 10))


def test_special_hours_replace_the_days_hours() -> None:
    cal = Calendar.from_spec(
        {
            "timezone": "Europe/Paris",
            "hours": {"mon-fri": ["09:00-17:00"]},
            "special_hours": {"2026-12-24": ["09:00-13:00"]},
        }
    )
    assert cal.is_open(paris(2026, 12, 24, 12, 59))
    assert not cal.is_open(paris(2026, 12, 24, 13))


def test_add_on_a_half_day_carries_to_the_next_day() -> None:
    cal = Calendar.from_spec(
        {
            "timezone": "Europe/Paris",
            "hours": {"mon-fri": ["09:00-17:00"]},
            "holidays": ["2026-12-25"],
            "special_hours": {date(2026, 12, 24): ["09:00-13:00"]},
        }
    )
    assert cal.add(paris(2026, 12, 24, 12), 2 * H) == paris(2026, 12, 28, 10)


def test_special_hours_with_an_empty_list_close_the_day() -> None:
    cal = Calendar.from_spec(
        {
            "timezone": "Europe/Paris",
            "hours": {"mon-fri": ["09:00-17:00"]},
            "special_hours": {"2026-03-04": []},
        }
    )
    assert cal.elapsed(paris(2026, 3, 4), paris(2026, 3, 5)) == timedelta(0)


# -- daylight saving time ---------------------------------------------------------------------


def test_paris_spring_forward_day_holds_23_hours() -> None:
    cal = Calendar.from_spec({"always": True, "timezone": "Europe/Paris"})
    assert cal.elapsed(paris(2026, 3, 29), paris(2026, 3, 30)) == 23 * H


def test_paris_autumn_day_open_all_day_holds_25_hours() -> None:
    cal = Calendar.from_spec({"timezone": "Europe/Paris", "hours": {"sun": ["00:00-24:00"]}})
    assert cal.elapsed(paris(2026, 10, 25), paris(2026, 10, 26)) == 25 * H


def test_add_a_day_on_the_paris_autumn_day_ends_at_23_local() -> None:
    cal = Calendar.from_spec({"timezone": "Europe/Paris", "hours": {"sun": ["00:00-24:00"]}})
    assert cal.add(paris(2026, 10, 25), 24 * H) == paris(2026, 10, 25, 23)


def test_a_span_across_the_paris_spring_gap_shrinks_by_an_hour() -> None:
    cal = Calendar.from_spec({"timezone": "Europe/Paris", "hours": {"sun": ["01:00-04:00"]}})
    assert cal.elapsed(paris(2026, 3, 29), paris(2026, 3, 30)) == 2 * H


def test_a_span_inside_the_paris_spring_gap_vanishes() -> None:
    cal = Calendar.from_spec(
        {"timezone": "Europe/Paris", "hours": {"sun": ["02:00-03:00"], "mon": ["09:00-10:00"]}}
    )
    assert cal.elapsed(paris(2026, 3, 29), paris(2026, 3, 30)) == timedelta(0)


def test_office_hours_over_the_paris_spring_weekend_are_unchanged(office: Calendar) -> None:
    assert office.add(paris(2026, 3, 27, 16), 2 * H) == paris(2026, 3, 30, 10)
    assert office.elapsed(paris(2026, 3, 27, 16), paris(2026, 3, 30, 10)) == 2 * H


def test_office_hours_over_the_paris_autumn_weekend_are_unchanged(office: Calendar) -> None:
    assert office.add(paris(2026, 10, 23, 16), 2 * H) == paris(2026, 10, 26, 10)


def test_new_york_spring_forward_day_holds_23_hours() -> None:
    cal = Calendar.from_spec({"always": True, "timezone": "America/New_York"})
    assert cal.elapsed(new_york(2026, 3, 8), new_york(2026, 3, 9)) == 23 * H


def test_new_york_fall_back_day_holds_25_hours() -> None:
    cal = Calendar.from_spec({"always": True, "timezone": "America/New_York"})
    assert cal.elapsed(new_york(2026, 11, 1), new_york(2026, 11, 2)) == 25 * H


def test_new_york_night_shift_loses_an_hour_in_spring() -> None:
    cal = Calendar.from_spec({"timezone": "America/New_York", "hours": {"sat": ["22:00-06:00"]}})
    assert cal.elapsed(new_york(2026, 3, 7), new_york(2026, 3, 9)) == 7 * H


def test_new_york_night_shift_gains_an_hour_in_autumn() -> None:
    cal = Calendar.from_spec({"timezone": "America/New_York", "hours": {"sat": ["22:00-06:00"]}})
    assert cal.elapsed(new_york(2026, 10, 31), new_york(2026, 11, 2)) == 9 * H
    assert cal.add(new_york(2026, 10, 31, 22), 8 * H) == new_york(2026, 11, 1, 5)


def test_a_due_time_in_the_repeated_autumn_hour_is_the_second_occurrence() -> None:
    cal = Calendar.from_spec({"always": True, "timezone": "America/New_York"})
    due = cal.add(new_york(2026, 11, 1, 0, 30), 2 * H)
    assert (due.hour, due.minute, due.fold) == (1, 30, 1)
    assert due.utcoffset() == -5 * H


# -- add_days ---------------------------------------------------------------------------------


def test_add_days_keeps_the_clock_time(office: Calendar) -> None:
    assert office.add_days(paris(2026, 3, 2, 10), 1) == paris(2026, 3, 3, 10)


def test_add_days_skips_the_weekend(office: Calendar) -> None:
    assert office.add_days(paris(2026, 3, 6, 10), 1) == paris(2026, 3, 9, 10)


def test_add_days_skips_a_holiday() -> None:
    cal = Calendar.from_spec(
        {
            "timezone": "Europe/Paris",
            "hours": {"mon-fri": ["09:00-17:00"]},
            "holidays": ["2026-12-25"],
        }
    )
    assert cal.add_days(paris(2026, 12, 24, 10), 1) == paris(2026, 12, 28, 10)


def test_add_days_counts_a_cn_make_up_workday(china: Calendar) -> None:
    assert china.add_days(shanghai(2026, 2, 13, 10), 1) == shanghai(2026, 2, 14, 10)
    assert china.add_days(shanghai(2026, 2, 13, 10), 2) == shanghai(2026, 2, 24, 10)


def test_add_days_moves_a_closed_clock_time_to_the_next_opening(office: Calendar) -> None:
    assert office.add_days(paris(2026, 3, 2, 20), 1) == paris(2026, 3, 4, 9)


def test_add_days_backward(office: Calendar) -> None:
    assert office.add_days(paris(2026, 3, 9, 10), -1) == paris(2026, 3, 6, 10)


def test_add_zero_days_is_the_next_opening(office: Calendar) -> None:
    assert office.add_days(paris(2026, 3, 7, 10), 0) == paris(2026, 3, 9, 9)


# -- closed periods: excluding ------------------------------------------------------------------


def test_excluding_closes_the_interval(office: Calendar) -> None:
    cut = office.excluding([(paris(2026, 3, 2, 10), paris(2026, 3, 2, 12))])
    assert not cut.is_open(paris(2026, 3, 2, 11))
    assert cut.is_open(paris(2026, 3, 2, 12))


def test_excluding_leaves_the_original_calendar_unchanged(office: Calendar) -> None:
    office.excluding([(paris(2026, 3, 2, 10), paris(2026, 3, 2, 12))])
    assert office.is_open(paris(2026, 3, 2, 11))


def test_add_skips_an_excluded_interval(office: Calendar) -> None:
    cut = office.excluding([(paris(2026, 3, 2, 10), paris(2026, 3, 2, 12))])
    assert cut.add(paris(2026, 3, 2, 9), 2 * H) == paris(2026, 3, 2, 13)


def test_excluding_a_pause_across_days(office: Calendar) -> None:
    cut = office.excluding([(paris(2026, 3, 2, 16), paris(2026, 3, 4, 10))])
    assert cut.elapsed(paris(2026, 3, 2, 9), paris(2026, 3, 5, 9)) == 7 * H + 7 * H


def test_excluding_nothing_gives_an_equal_calendar(office: Calendar) -> None:
    assert office.excluding([]) == office


def test_excluding_an_interval_that_ends_before_it_starts_is_an_error(office: Calendar) -> None:
    with pytest.raises(CalendarError, match="before start"):
        office.excluding([(paris(2026, 3, 2, 12), paris(2026, 3, 2, 10))])


def test_excluding_a_naive_interval_is_an_error(office: Calendar) -> None:
    with pytest.raises(NaiveDatetimeError):
        office.excluding([(datetime(2026, 3, 2, 10), paris(2026, 3, 2, 12))])


# -- always (7x24) ------------------------------------------------------------------------------


def test_always_is_open_at_any_instant() -> None:
    assert Calendar.always().is_open(datetime(2026, 12, 25, 3, tzinfo=UTC))


def test_always_adds_plain_time() -> None:
    start = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert Calendar.always().add(start, timedelta(days=400)) == start + timedelta(days=400)


def test_always_is_in_utc() -> None:
    assert Calendar.always().timezone == "UTC"


def test_the_string_always_names_the_7x24_calendar() -> None:
    assert Calendar.from_spec("always") == Calendar.always()


def test_always_true_with_a_timezone_is_7x24_in_that_zone() -> None:
    cal = Calendar.from_spec({"always": True, "timezone": "Asia/Shanghai"})
    assert cal.timezone == "Asia/Shanghai"
    assert cal.elapsed(shanghai(2026, 1, 1), shanghai(2026, 1, 8)) == 7 * 24 * H


# -- a calendar is a value ------------------------------------------------------------------------


def test_equal_specs_give_equal_and_equally_hashed_calendars() -> None:
    spec = {"timezone": "Europe/Paris", "hours": {"mon-fri": ["09:00-17:00"]}}
    assert Calendar.from_spec(spec) == Calendar.from_spec(spec)
    assert hash(Calendar.from_spec(spec)) == hash(Calendar.from_spec(spec))


def test_spec_round_trips(china: Calendar) -> None:
    cut = china.excluding([(shanghai(2026, 3, 2, 10), shanghai(2026, 3, 2, 12))])
    assert Calendar.from_spec(cut.spec) == cut


def test_spec_is_normalized() -> None:
    cal = Calendar.from_spec(
        {
            "timezone": "Europe/Paris",
            "hours": {"mon-tue": ["13:00-17:00", "09:00-12:00"], "fri": ["22:00-24:00"]},
            "holidays": [date(2026, 12, 25), {"country": "fr"}],
        }
    )
    assert cal.spec == {
        "timezone": "Europe/Paris",
        "hours": {
            "mon": ["09:00-12:00", "13:00-17:00"],
            "tue": ["09:00-12:00", "13:00-17:00"],
            "fri": ["22:00-24:00"],
        },
        "holidays": ["2026-12-25", {"country": "FR", "subdiv": None}],
        "workdays": {},
        "special_hours": {},
    }


def test_a_calendar_is_immutable(office: Calendar) -> None:
    with pytest.raises(AttributeError):
        office.timezone = "UTC"  # type: ignore[misc]


def test_a_calendar_pickles(china: Calendar) -> None:
    assert pickle.loads(pickle.dumps(china)) == china


def test_keyword_construction_equals_from_spec() -> None:
    spec = {"timezone": "Europe/Paris", "hours": {"mon-fri": ["09:00-17:00"]}}
    assert Calendar("Europe/Paris", {"mon-fri": ["09:00-17:00"]}) == Calendar.from_spec(spec)


# -- range and never-open guards ------------------------------------------------------------------


def test_a_date_two_centuries_out_is_answered(office: Calendar) -> None:
    assert office.next_open(paris(2199, 6, 1, 12)) == paris(2199, 6, 3, 9)  # Sat -> Mon


def test_a_date_beyond_2200_is_refused(office: Calendar) -> None:
    with pytest.raises(CalendarError, match="outside the years 1900..2200"):
        office.is_open(paris(2300, 1, 1))


def test_adding_to_a_calendar_closed_for_good_raises_instead_of_hanging(office: Calendar) -> None:
    closed = office.excluding([(paris(2026, 1, 1), paris(2201, 1, 1))])
    with pytest.raises(CalendarError, match="no working time after 2026-03-02T09:00:00[+]01:00"):
        closed.add(paris(2026, 3, 2, 9), H)


def test_next_open_on_a_calendar_closed_for_good_raises(office: Calendar) -> None:
    closed = office.excluding([(paris(2026, 1, 1), paris(2201, 1, 1))])
    with pytest.raises(CalendarError, match="no working time after"):
        closed.next_open(paris(2026, 3, 2, 9))


def test_adding_more_than_a_one_day_calendar_holds_raises() -> None:
    cal = Calendar.from_spec(
        {"timezone": "Europe/Paris", "special_hours": {"2026-03-02": ["09:00-17:00"]}}
    )
    assert cal.add(paris(2026, 3, 1), 8 * H) == paris(2026, 3, 2, 17)
    with pytest.raises(CalendarError, match="less than"):
        cal.add(paris(2026, 3, 1), 9 * H)


def test_due_times_years_ahead_and_behind_grow_the_table_exactly() -> None:
    """A fresh calendar first answers for the years around its first question;
    a due time four years on (or back) is found by growing that, and comes
    out the same as counting whole working weeks."""
    weekdays = Calendar.from_spec({"timezone": "UTC", "hours": {"mon-fri": ["09:00-17:00"]}})
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday
    assert weekdays.add(start, timedelta(hours=1)) == start + timedelta(hours=1)
    four_years = timedelta(hours=8 * 5 * 208)  # 208 working weeks
    due = start + timedelta(weeks=207, days=4, hours=8)  # Friday 17:00 of the 208th
    assert weekdays.add(start, four_years) == due
    assert weekdays.add(due, -four_years) == start
    assert weekdays.elapsed(start, due) == four_years


def test_a_due_time_in_a_night_that_runs_past_the_years_answered_so_far() -> None:
    """The last night of the years a calendar has worked out runs past their
    end: a due time in its small hours is found there, not moved."""
    nights = Calendar.from_spec({"timezone": "UTC", "hours": {"mon-sun": ["22:00-06:00"]}})
    start = datetime(2026, 1, 1, 22, 0, tzinfo=UTC)
    assert nights.add(start, timedelta(hours=1)) == start + timedelta(hours=1)  # 2025..2027
    amount = timedelta(hours=729 * 8 + 5)  # the nights of 2026 and 2027, then five hours
    due = datetime(2028, 1, 1, 3, 0, tzinfo=UTC)
    assert nights.add(start, amount) == due
    assert nights.add(due, -amount) == start
    assert nights.elapsed(start, due) == amount


@pytest.mark.parametrize("days", [111_000, 106_751_991, 999_999_999])
@pytest.mark.parametrize("sign", [1, -1])
def test_adding_more_than_the_calendars_years_hold_raises(days: int, sign: int) -> None:
    """The same error for any amount past the years, however large."""
    always = Calendar.always()
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    with pytest.raises(CalendarError, match=r"business time is more than the years 1900\.\.2200"):
        always.add(start, sign * timedelta(days=days))
    with pytest.raises(CalendarError, match="more than the years"):  # the clocks' way in
        always.arithmetic.add(0, sign * min(days * 86_400_000_000, 2**63 - 1))


def test_a_naive_start_is_named_before_an_amount_past_the_years() -> None:
    with pytest.raises(NaiveDatetimeError):
        Calendar.always().add(datetime(2026, 1, 5, 9, 0), timedelta.max)
