"""Which failures mean "a server we depend on is unreachable": expected while it restarts, not bugs."""

from __future__ import annotations

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError


def is_outage(exc: BaseException) -> bool:
    """The database or Redis is unreachable: an operator's problem that passes, not a bug."""
    if isinstance(exc, DBAPIError):
        # A failed connect surfaces as a bare DBAPIError; integrity or SQL errors (subclasses) are bugs.
        return exc.connection_invalidated or type(exc) in (DBAPIError, OperationalError, InterfaceError)
    return isinstance(exc, (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError))
