"""/history: the user's delivered images, newest first, five to a page, each sent by its stored
file id (no re-upload). Paging edits the thumbnails in place; /history clear asks first."""

from __future__ import annotations

import html
import logging

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardMarkup,
    InputMediaDocument,
    InputMediaPhoto,
    Message,
)
from aiogram.utils.i18n import gettext as _

from bot.clock import Clock
from bot.services.gallery import GalleryService, HistoryPage, StoredResult
from bot.texts import CAPTION_LIMIT, fit_html, format_date, model_title
from handlers.results import owned_result
from keyboards.history import (
    ClearChoice,
    HistoryAgain,
    HistoryClear,
    HistoryNav,
    clear_keyboard,
    item_keyboard,
    nav_keyboard,
    unpack_ids,
)

log = logging.getLogger(__name__)

PROMPT_SHOWN = 200  # characters of the prompt under a thumbnail


def router_factory() -> Router:
    router = Router(name="history")
    router.message.register(on_history, Command("history"), F.chat.type == ChatType.PRIVATE)
    router.callback_query.register(on_nav, HistoryNav.filter())
    router.callback_query.register(on_again, HistoryAgain.filter())
    router.callback_query.register(on_clear, HistoryClear.filter())
    return router


async def on_history(message: Message, command: CommandObject, bot: Bot, gallery: GalleryService, clock: Clock) -> None:
    assert message.from_user is not None
    user_id = message.from_user.id
    if (command.args or "").strip().lower() == "clear":
        count = await gallery.count(user_id)
        if not count:
            await message.answer(_("Your history is already empty."))
            return
        await message.answer(
            _(
                "Delete your history ({count} results)? The images stay in this chat; "
                "I forget them, and their buttons stop working."
            ).format(count=count),
            reply_markup=clear_keyboard(),
        )
        return
    page = await gallery.history(user_id, 0)
    if not page.items:
        await message.answer(_("Your history is empty. Send me a description to make your first image."))
        return
    shown = [await _send_item(bot, message.chat.id, item, clock) for item in page.items]
    await bot.send_message(message.chat.id, _page_text(page), reply_markup=nav_keyboard(page.page, page.pages, shown))


async def on_nav(
    callback: CallbackQuery, callback_data: HistoryNav, bot: Bot, gallery: GalleryService, clock: Clock
) -> None:
    nav = callback.message
    if not isinstance(nav, Message) or nav.chat.id != callback.from_user.id:
        await callback.answer(_("Your history is in our private chat: send /history there."), show_alert=True)
        return
    await callback.answer()
    page = await gallery.history(callback.from_user.id, callback_data.page)
    chat_id = nav.chat.id
    old = unpack_ids(callback_data.first, callback_data.offsets)
    shown: list[int] = []
    appended = False  # a thumbnail had to be sent anew: it now sits below the ◀️ ▶️ line
    for index, item in enumerate(page.items):
        if index < len(old) and await _edit_item(bot, chat_id, old[index], item, clock):
            shown.append(old[index])
        else:
            shown.append(await _send_item(bot, chat_id, item, clock))
            appended = True
    for stale in old[len(page.items) :]:
        await _delete_quietly(bot, chat_id, stale)
    markup = nav_keyboard(page.page, page.pages, shown)
    if not appended:
        try:
            await nav.edit_text(_page_text(page), reply_markup=markup)
            return
        except TelegramBadRequest as exc:
            if "not modified" in exc.message:
                return
            log.debug("history line not edited: %s", exc.message[:100])
    await _delete_quietly(bot, chat_id, nav.message_id)
    await bot.send_message(chat_id, _page_text(page), reply_markup=markup)


async def on_again(
    callback: CallbackQuery, callback_data: HistoryAgain, bot: Bot, gallery: GalleryService, clock: Clock
) -> None:
    """📤 The stored images once more, by file id: no provider call, no charge."""
    stored = await owned_result(callback, gallery, callback_data.generation_id)
    if stored is None:
        return
    if not stored.images:
        await callback.answer(_("This image is no longer available."), show_alert=True)
        return
    await callback.answer()
    chat_id = callback.from_user.id
    caption = _caption(stored, clock)
    try:
        photos = [image for image in stored.images if image.kind == "photo"]
        if len(photos) == len(stored.images) and len(photos) > 1:
            media = [InputMediaPhoto(media=image.file_id) for image in photos]
            media[0] = InputMediaPhoto(media=photos[0].file_id, caption=caption)
            await bot.send_media_group(chat_id, media)  # type: ignore[arg-type]
            return
        for position, image in enumerate(stored.images):
            text = caption if position == 0 else None
            if image.kind == "photo":
                await bot.send_photo(chat_id, image.file_id, caption=text)
            else:
                await bot.send_document(chat_id, image.file_id, caption=text)
    except TelegramAPIError as exc:
        log.warning("generation %s not sent again: %s", stored.generation_id, type(exc).__name__)
        await bot.send_message(chat_id, _("Telegram would not send that file just now. Please try again later."))


async def on_clear(callback: CallbackQuery, callback_data: HistoryClear, gallery: GalleryService) -> None:
    message = callback.message
    if not isinstance(message, Message) or message.chat.id != callback.from_user.id:
        await callback.answer(_("Your history is in our private chat: send /history there."), show_alert=True)
        return
    if callback_data.choice is ClearChoice.YES:
        removed = await gallery.clear(callback.from_user.id)
        text = _("🗑 Your history is cleared.") if removed else _("Your history is already empty.")
    else:
        text = _("Nothing was deleted.")
    await callback.answer()
    try:
        await message.edit_text(text)
    except TelegramBadRequest as exc:  # a second tap: the text is already there
        log.debug("clear confirmation not edited: %s", exc.message[:100])


def _page_text(page: HistoryPage) -> str:
    return _("🗂 Your history: page {page} of {pages} ({total} results, newest first).").format(
        page=page.page + 1, pages=page.pages, total=page.total
    )


def _caption(stored: StoredResult, clock: Clock) -> str:
    head = f"<b>{html.escape(model_title(stored.model))}</b> · {format_date(stored.created_at, clock.tz)}"
    if len(stored.images) > 1:
        head += " · " + _("{count} images").format(count=len(stored.images))
    prompt = stored.prompt if len(stored.prompt) <= PROMPT_SHOWN else stored.prompt[: PROMPT_SHOWN - 1] + "…"
    return fit_html(head + "\n", prompt, "", CAPTION_LIMIT, wrap="📝 {}")


def _media(stored: StoredResult, clock: Clock) -> InputMediaPhoto | InputMediaDocument | None:
    cover = stored.cover
    if cover is None:
        return None
    caption = _caption(stored, clock)
    if cover.kind == "photo":
        return InputMediaPhoto(media=cover.file_id, caption=caption)
    return InputMediaDocument(media=cover.file_id, caption=caption)


async def _send_item(bot: Bot, chat_id: int, stored: StoredResult, clock: Clock) -> int:
    cover = stored.cover
    assert cover is not None  # the page holds only results with images
    caption = _caption(stored, clock)
    markup: InlineKeyboardMarkup = item_keyboard(stored.generation_id)
    if cover.kind == "photo":
        sent = await bot.send_photo(chat_id, cover.file_id, caption=caption, reply_markup=markup)
    else:
        sent = await bot.send_document(chat_id, cover.file_id, caption=caption, reply_markup=markup)
    return sent.message_id


async def _edit_item(bot: Bot, chat_id: int, message_id: int, stored: StoredResult, clock: Clock) -> bool:
    """Swap a shown thumbnail for this one; False when the message cannot be edited (gone, too old)."""
    media = _media(stored, clock)
    if media is None:
        return False
    try:
        await bot.edit_message_media(
            media=media, chat_id=chat_id, message_id=message_id, reply_markup=item_keyboard(stored.generation_id)
        )
    except TelegramBadRequest as exc:
        if "not modified" in exc.message:
            return True
        log.debug("history thumbnail %s not edited: %s", message_id, exc.message[:100])
        return False
    return True


async def _delete_quietly(bot: Bot, chat_id: int, message_id: int) -> None:
    try:
        await bot.delete_message(chat_id, message_id)
    except TelegramAPIError as exc:
        log.debug("history message not deleted: %s", type(exc).__name__)
