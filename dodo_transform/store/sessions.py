"""Console sessions and login attempts, kept in the store so that every instance agrees.

A session is known by a key the console derives from its cookie and the admin token (see
`web.console.session`): the store never holds the cookie, and a new token finds none of the
sessions made with the old one. Logging out deletes the session, so a copied cookie ends too.

Login attempts are counted per client address in fixed windows, with one upsert: attempts made
at the same moment, on any instance, each get their own count, so no burst of them slips past
the limit between a read and a write.

Both SQL stores inherit `SqlSessions` beside `SqlReads`, and give `_write` (statements in one
transaction; the rows of the last).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

# Run after the address's window, if over, was deleted: a new one starts at 1.
_COUNT_ATTEMPT = """
    INSERT INTO login_attempts (address, window_start, attempts) VALUES (?, ?, 1)
    ON CONFLICT (address) DO UPDATE SET attempts = login_attempts.attempts + 1
    RETURNING attempts, window_start
"""

Statement = tuple[str, Sequence[Any]]


class SqlSessions:
    placeholder = "?"
    _clock: Callable[[], float]

    def _query(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    def _write(self, statements: Sequence[Statement]) -> list[Any]:
        raise NotImplementedError

    def _write_all(self, *statements: Statement) -> list[Any]:
        """`statements`, written with `?`, in one transaction; the rows the last returns."""
        return self._write([(sql.replace("?", self.placeholder), p) for sql, p in statements])

    def open_session(self, key: str, seconds: float) -> None:
        """Keep session `key` for `seconds`; sessions past their time go now."""
        now = self._clock()
        self._write_all(
            ("DELETE FROM console_sessions WHERE expires_at <= ?", (now,)),
            ("INSERT INTO console_sessions (key, expires_at) VALUES (?, ?)", (key, now + seconds)),
        )

    def session_open(self, key: str) -> bool:
        rows = self._query(
            "SELECT 1 FROM console_sessions WHERE key = ? AND expires_at > ?", (key, self._clock())
        )
        return bool(rows)

    def close_session(self, key: str) -> None:
        self._write_all(("DELETE FROM console_sessions WHERE key = ?", (key,)))

    def count_login_attempt(self, address: str, window_seconds: float) -> tuple[int, float]:
        """Count one login attempt from `address`: the attempts in its window so far (this one
        included), and the seconds until that window ends."""
        now = self._clock()
        stale = now - window_seconds
        ((attempts, started),) = self._write_all(
            ("DELETE FROM login_attempts WHERE window_start <= ?", (stale,)),
            (_COUNT_ATTEMPT, (address, now)),
        )
        return int(attempts), max(0.0, float(started) + window_seconds - now)

    def forget_login_attempts(self, address: str) -> None:
        """A login succeeded: the address starts afresh."""
        self._write_all(("DELETE FROM login_attempts WHERE address = ?", (address,)))
