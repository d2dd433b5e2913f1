"""/history: the buttons under each thumbnail, the ◀️ ▶️ line, and the confirmation of /history clear."""

from __future__ import annotations

from enum import StrEnum

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from keyboards.results import ResultAction, ResultButton

# The thumbnails a page shows, as message-id offsets from the first: CallbackData is at most 64 bytes.
MAX_PAGE_ITEMS = 5


class HistoryAgain(CallbackData, prefix="hagain"):
    """📤 Send again: the stored images, by file id."""

    generation_id: int


class HistoryNav(CallbackData, prefix="hnav"):
    """Go to `page`. `first` and `offsets` name the thumbnails now shown, so they are edited in place."""

    page: int
    first: int
    offsets: str  # "0.1.2.3.4": message ids relative to `first`


class ClearChoice(StrEnum):
    YES = "yes"
    NO = "no"


class HistoryClear(CallbackData, prefix="hclear"):
    choice: ClearChoice


def item_keyboard(generation_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=_("📤 Send again"), callback_data=HistoryAgain(generation_id=generation_id).pack()
                ),
                InlineKeyboardButton(
                    text=_("🔁 Regenerate"),
                    callback_data=ResultButton(action=ResultAction.REGENERATE, generation_id=generation_id).pack(),
                ),
            ]
        ]
    )


def pack_ids(message_ids: list[int]) -> tuple[int, str]:
    first = message_ids[0] if message_ids else 0
    return first, ".".join(str(mid - first) for mid in message_ids)


def unpack_ids(first: int, offsets: str) -> list[int]:
    """The thumbnails' ids; malformed (forged) data gives none, so nothing is edited."""
    try:
        deltas = [int(part) for part in offsets.split(".")] if offsets else []
    except ValueError:
        return []
    return [first + d for d in deltas[:MAX_PAGE_ITEMS] if first > 0 and d >= 0]


def nav_keyboard(page: int, pages: int, shown: list[int]) -> InlineKeyboardMarkup | None:
    if pages <= 1:
        return None
    first, offsets = pack_ids(shown)
    row: list[InlineKeyboardButton] = []
    if page > 0:
        row.append(
            InlineKeyboardButton(text="◀️", callback_data=HistoryNav(page=page - 1, first=first, offsets=offsets).pack())
        )
    if page < pages - 1:
        row.append(
            InlineKeyboardButton(text="▶️", callback_data=HistoryNav(page=page + 1, first=first, offsets=offsets).pack())
        )
    return InlineKeyboardMarkup(inline_keyboard=[row])


def clear_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=_("🗑 Yes, delete"), callback_data=HistoryClear(choice=ClearChoice.YES).pack()
                ),
                InlineKeyboardButton(text=_("Cancel"), callback_data=HistoryClear(choice=ClearChoice.NO).pack()),
            ]
        ]
    )
