"""Which failures mean "a server we depend on is unreachable": expected while it restarts, not bugs."""

from __future__ import annotations

import sys

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout


def is_outage(exc: BaseException) -> bool:
    """The database or Redis is unreachable: an operator's problem that passes, not a bug.

    Libraries wrap these (taskiq raises SendTaskError from the Redis error; its receiver's task group
    raises an exception group), so causes and group members count too.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, BaseExceptionGroup):
            return all(is_outage(member) for member in current.exceptions)
        if _is_outage(current):
            return True
        seen.add(id(current))
        current = current.__cause__
    return False


def _is_outage(exc: BaseException) -> bool:
    if isinstance(exc, PoolTimeout):  # every connection busy for pool_timeout: overloaded, not broken
        return True
    if isinstance(exc, DBAPIError):
        # A failed connect surfaces as a bare DBAPIError; integrity or SQL errors (subclasses) are bugs.
        return exc.connection_invalidated or type(exc) in (DBAPIError, OperationalError, InterfaceError)
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    redis = sys.modules.get("redis.exceptions")  # loaded only with REDIS_URL; else no Redis error exists
    return redis is not None and isinstance(exc, (redis.ConnectionError, redis.TimeoutError))
