"""What `database_errors` makes of a failed statement: a value the database refuses for what it is is a 422 the
client must change, a full disk or a lost connection a 503 worth retrying, saying which."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy.exc import DBAPIError, OperationalError

from mintlog.adapters.db.sql import database_errors
from mintlog.errors import DatabaseUnavailable, MintlogError, UnprocessableEntity


class PostgresError(Exception):
    """Stands for asyncpg's errors as SQLAlchemy's asyncpg dialect wraps them: they carry `sqlstate`."""

    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def raised_by(driver_error: Exception) -> MintlogError:
    with pytest.raises(MintlogError) as caught, database_errors():
        raise DBAPIError("SELECT 1", {}, driver_error)
    return caught.value


@pytest.mark.parametrize(
    ("message", "sqlstate"),
    [
        ('invalid byte sequence for encoding "UTF8": 0x00', "22021"),  # a NUL in a text
        ("unsupported Unicode escape sequence", "22P05"),  # \u0000 in JSONB
        ("value too long for type character varying(40)", "22001"),
    ],
)
def test_a_value_the_database_refuses_is_422_never_unavailable(message: str, sqlstate: str) -> None:
    error = raised_by(PostgresError(message, sqlstate))

    assert isinstance(error, UnprocessableEntity)
    assert error.code == "unstorable_value"
    assert error.detail.endswith(f"{message} (SQLSTATE {sqlstate})")


def test_a_full_postgresql_disk_is_unavailable_and_says_so() -> None:
    error = raised_by(PostgresError('could not extend file "base/16384/2619": No space left on device', "53100"))

    assert isinstance(error, DatabaseUnavailable)
    assert str(error).startswith("the metadata database's disk is full (could not extend file")


def test_a_full_sqlite_disk_is_unavailable_and_says_so() -> None:
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorname = "SQLITE_FULL"  # set by sqlite3 on the errors it raises  # pyright: ignore[reportAttributeAccessIssue]

    with (
        pytest.raises(DatabaseUnavailable, match=r"^the metadata database's disk is full \(database or disk is full\)"),
        database_errors(),
    ):
        raise OperationalError("INSERT …", {}, full)


def test_a_connection_lost_is_unavailable() -> None:
    error = raised_by(PostgresError("connection was closed in the middle of operation", "08006"))

    assert isinstance(error, DatabaseUnavailable)
    assert str(error) == "metadata database unreachable: DBAPIError"
