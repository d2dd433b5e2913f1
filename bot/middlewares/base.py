"""What every middleware here receives as `handler`: the rest of aiogram's chain, named once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

from aiogram.types import TelegramObject

NextHandler: TypeAlias = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]
