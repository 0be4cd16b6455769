# cython: language_level=3
"""Aware datetimes to and from epoch microseconds, through the datetime C API.

The clocks count in integer microseconds since the epoch and convert at the
edges: one conversion per event in, a dozen per ticket's statuses out. In
Python each conversion builds a timedelta and normalises it (0.4-0.6 µs);
here the date is worked out with integer arithmetic from the datetime's
fields (Howard Hinnant's days_from_civil / civil_from_days) and the result
built in one call. ``slaengine.clock`` falls back to the Python expressions
when this module is not compiled; both give the same results, and anything
other than an aware ``datetime`` (or an instant outside years 1..9999) takes
the Python path, so the same errors are raised.
"""

from cpython.datetime cimport (
    PyDateTime_Check,
    PyDateTime_DATE_GET_HOUR,
    PyDateTime_DATE_GET_MICROSECOND,
    PyDateTime_DATE_GET_MINUTE,
    PyDateTime_DATE_GET_SECOND,
    PyDateTime_DELTA_GET_DAYS,
    PyDateTime_DELTA_GET_MICROSECONDS,
    PyDateTime_DELTA_GET_SECONDS,
    PyDateTime_GET_DAY,
    PyDateTime_GET_MONTH,
    PyDateTime_GET_YEAR,
    PyDelta_Check,
    datetime_new,
    import_datetime,
)

import_datetime()

from datetime import UTC, datetime, timedelta

cdef object _EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
cdef object _ONE_US = timedelta(microseconds=1)
cdef long long _DAY_US = 86_400_000_000
# The instants a datetime can hold: 0001-01-01T00:00Z up to 9999-12-31T23:59:59.999999Z.
cdef long long _MIN_US = -62_135_596_800_000_000
cdef long long _MAX_US = 253_402_300_799_999_999


cdef inline long long _days_from_civil(long long y, long long m, long long d):
    """Days since 1970-01-01 of a proleptic Gregorian date (floor division throughout)."""
    if m <= 2:
        y -= 1
    cdef long long era = y // 400
    cdef long long yoe = y - era * 400
    cdef long long doy = (153 * (m - 3 if m > 2 else m + 9) + 2) // 5 + d - 1
    cdef long long doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def epoch_us(t):
    """Epoch microseconds of an aware datetime (exact), as ``(t - EPOCH) // 1 µs``."""
    cdef long long days, seconds
    if PyDateTime_Check(t):
        offset = t.utcoffset()
        if offset is not None and PyDelta_Check(offset):
            days = _days_from_civil(
                PyDateTime_GET_YEAR(t), PyDateTime_GET_MONTH(t), PyDateTime_GET_DAY(t)
            )
            seconds = (
                PyDateTime_DATE_GET_HOUR(t) * 3600
                + PyDateTime_DATE_GET_MINUTE(t) * 60
                + PyDateTime_DATE_GET_SECOND(t)
                - PyDateTime_DELTA_GET_DAYS(offset) * 86400
                - PyDateTime_DELTA_GET_SECONDS(offset)
            )
            return (
                (days * 86400 + seconds) * 1_000_000
                + PyDateTime_DATE_GET_MICROSECOND(t)
                - PyDateTime_DELTA_GET_MICROSECONDS(offset)
            )
    return (t - _EPOCH) // _ONE_US  # naive, not a datetime, or an odd tzinfo: Python's errors


def utc(long long us):
    """The UTC datetime ``us`` microseconds after the epoch, as ``EPOCH + us * 1 µs``."""
    if not _MIN_US <= us <= _MAX_US:
        return _EPOCH + _ONE_US * us  # raises OverflowError, as Python does
    cdef long long z = us // _DAY_US
    cdef long long rest = us - z * _DAY_US
    z += 719468
    cdef long long era = z // 146097
    cdef long long doe = z - era * 146097
    cdef long long yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    cdef long long doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    cdef long long mp = (5 * doy + 2) // 153
    cdef int day = <int>(doy - (153 * mp + 2) // 5 + 1)
    cdef int month = <int>(mp + 3 if mp < 10 else mp - 9)
    cdef int year = <int>(yoe + era * 400 + (1 if month <= 2 else 0))
    cdef long long second = rest // 1_000_000
    return datetime_new(
        year,
        month,
        day,
        <int>(second // 3600),
        <int>(second // 60 % 60),
        <int>(second % 60),
        <int>(rest % 1_000_000),
        UTC,
    )
