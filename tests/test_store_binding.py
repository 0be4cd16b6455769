"""The write path binds SQLite datetimes with ``isoformat``: the same text SQLAlchemy writes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql, sqlite

from slaengine.store import _fast_sqlite_datetime

DIALECT = sqlite.dialect()
IMPL = sa.DateTime(timezone=True).dialect_impl(DIALECT)
SQLALCHEMY = IMPL.bind_processor(DIALECT)
FAST = _fast_sqlite_datetime(IMPL, SQLALCHEMY)

offsets = st.integers(min_value=-23 * 60, max_value=23 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@given(st.datetimes(timezones=st.none() | st.just(UTC) | offsets))
def test_any_datetime_is_written_as_sqlalchemy_writes_it(value: datetime) -> None:
    assert FAST(value) == SQLALCHEMY(value)


def test_the_fast_path_is_taken_and_other_values_keep_sqlalchemys_processor() -> None:
    assert FAST is not SQLALCHEMY
    assert FAST(datetime(1, 1, 1, 0, 0)) == "0001-01-01 00:00:00.000000"
    assert FAST(datetime(2026, 11, 23, 9, 5, 7, 42, tzinfo=UTC)) == ("2026-11-23 09:05:07.000042")
    assert (
        FAST(date(2026, 11, 23)) == SQLALCHEMY(date(2026, 11, 23)) == "2026-11-23 00:00:00.000000"
    )
    assert FAST(None) is None


def test_a_custom_storage_format_keeps_sqlalchemys_processor() -> None:
    custom = sqlite.DATETIME(truncate_microseconds=True)
    process = custom.bind_processor(DIALECT)
    assert _fast_sqlite_datetime(custom, process) is process
    postgres = sa.DateTime(timezone=True).dialect_impl(postgresql.dialect())
    assert _fast_sqlite_datetime(postgres, None) is None
