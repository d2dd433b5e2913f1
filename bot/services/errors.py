"""The product's own refusals, raised by services and turned into a localized sentence by the error
router (handlers/errors.py), so a handler does not catch builtin exceptions that mean something else."""

from __future__ import annotations

from bot.services.user_view import UserView


class DomainError(Exception):
    """A business rule said no. Never a bug: logged at INFO, answered with a sentence."""


class UserNotFound(DomainError):
    """The user a command or a stored payment names has no row (they never started the bot)."""

    def __init__(self, user_id: int) -> None:
        super().__init__(f"no user {user_id}")
        self.user_id = user_id


class AdminProtected(DomainError):
    """An admin listed in ADMIN_IDS: the configuration, not a command, decides their level and ban."""

    def __init__(self, user: UserView) -> None:
        super().__init__(f"user {user.id} is an ADMIN_IDS admin")
        self.user = user
