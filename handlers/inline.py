"""Inline mode: `@bot a red fox` in any chat offers "Generate"; choosing it starts a job whose image
replaces the inline message (bot/inline_delivery.py).

The result carries a keyboard because Telegram gives the chosen result an `inline_message_id` (and
lets the bot edit it) only then; `chosen_inline_result` arrives only with /setinlinefeedback. The
answer is a preview: levels and the limit are checked again, and the unit reserved, when chosen.
"""

from __future__ import annotations

import contextlib
import html
import logging
from collections.abc import AsyncIterator

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.types import (
    ChosenInlineResult,
    InlineQuery,
    InlineQueryResultArticle,
    InputTextMessageContent,
)
from aiogram.utils.i18n import gettext as _

from bot.catalog import MODELS, ModelId
from bot.clock import Clock
from bot.config import Settings
from bot.faults import is_outage
from bot.queue import JobQueue
from bot.services.jobs import GenerationJobs, SubmitStatus, Submitted
from bot.services.private_chats import PrivateChats
from bot.services.quota import QuotaService
from bot.services.users import UserService, UserView
from bot.texts import fit_html, format_reset, level_name, model_title, start_first_text, truncate
from handlers.shared import fresh_user
from keyboards.inline import (
    HINT_ID,
    LIMIT_ID,
    LOCKED_ID,
    again_keyboard,
    generate_result_id,
    model_of_result,
    start_button,
)

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 4096
CACHE_SECONDS = 5  # the answer depends on the user's level and what is left today: hardly cached at all
DESCRIPTION_LIMIT = 200  # the grey line under a result's title


def router_factory() -> Router:
    router = Router(name="inline")
    router.inline_query.register(on_inline_query)
    router.chosen_inline_result.register(on_chosen, F.result_id.startswith("gen:"))
    return router


async def on_inline_query(
    inline_query: InlineQuery,
    bot: Bot,
    user: UserView,
    quota: QuotaService,
    private_chats: PrivateChats,
    settings: Settings,
    clock: Clock,
) -> None:
    """One result that says what choosing it will do; nothing is reserved until a result is chosen."""
    prompt = inline_query.query.strip()
    if not prompt:
        me = await bot.me()
        await _answer(inline_query, _hint(me.username or ""))
        return
    if settings.storage_chat_id is None and not await private_chats.started(user.id):
        await inline_query.answer([], cache_time=CACHE_SECONDS, is_personal=True, button=start_button())
        return
    model = user.chosen_model
    spec = MODELS[model]
    if not user.level.allows(spec.min_level):
        title = _("🔒 {model} is available from the {level} level").format(
            model=spec.title, level=level_name(spec.min_level)
        )
        await _answer(inline_query, _notice(LOCKED_ID, title, _("Choose another model with /generate in our chat.")))
        return
    status = await quota.status(user.id, user.level)
    if status.exhausted:
        title = _("You have used all {limit} images for today").format(limit=status.limit)
        reset = _("The limit resets at {reset}.").format(reset=format_reset(status.resets_at, clock.local_now()))
        await _answer(inline_query, _notice(LIMIT_ID, title, reset))
        return
    head = _("🎨 Generating with {model}…").format(model=html.escape(spec.title)) + "\n"
    text = fit_html(head, prompt, "", MESSAGE_LIMIT, "📝 {}")
    article = InlineQueryResultArticle(
        id=generate_result_id(model),
        title=_("🎨 Generate with {model}").format(model=spec.title),
        description=truncate(prompt, DESCRIPTION_LIMIT),
        input_message_content=InputTextMessageContent(message_text=text),
        reply_markup=again_keyboard(),  # without a keyboard the chosen message could never become the image
    )
    await _answer(inline_query, article)


async def _answer(inline_query: InlineQuery, result: InlineQueryResultArticle) -> None:
    await inline_query.answer([result], cache_time=CACHE_SECONDS, is_personal=True)


def _hint(bot_username: str) -> InlineQueryResultArticle:
    example = _("a red fox in the snow")
    return _notice(
        HINT_ID,
        _("Type a description of the image"),
        _("For example: @{bot} {example}").format(bot=bot_username, example=example),
    )


def _notice(result_id: str, title: str, description: str) -> InlineQueryResultArticle:
    """A result that starts nothing: if sent anyway, the chat sees the same explanation."""
    body = f"{html.escape(title)}\n{html.escape(description)}"
    return InlineQueryResultArticle(
        id=result_id,
        title=title,
        description=description,
        input_message_content=InputTextMessageContent(message_text=body),
    )


async def on_chosen(
    chosen: ChosenInlineResult,
    bot: Bot,
    user: UserView,
    users: UserService,
    jobs: GenerationJobs,
    queue: JobQueue,
    private_chats: PrivateChats,
    settings: Settings,
    clock: Clock,
) -> None:
    """Reserve and queue, exactly like a prompt in the chat; refusals replace the inline message."""
    inline_message_id = chosen.inline_message_id
    model = model_of_result(chosen.result_id)
    if inline_message_id is None or model is None or not MODELS[model].pickable:
        log.warning("chosen inline result %r without a message to edit or a model; ignored", chosen.result_id)
        return
    async with _failure_shown(bot, inline_message_id, user.id):
        if await jobs.for_inline_message(inline_message_id) is not None:  # the same choice delivered again
            log.info("chosen inline result delivered again; its job exists already")
            return
        fresh = await fresh_user(users, user)
        if fresh is None:
            return
        upload_chat = settings.storage_chat_id
        if upload_chat is None:
            if not await private_chats.started(fresh.id):
                me = await bot.me()
                await _edit(bot, inline_message_id, start_first_text(me.username or ""))
                return
            upload_chat = fresh.id
        submitted = await jobs.submit(
            user_id=fresh.id,
            chat_id=upload_chat,
            level=fresh.level,
            prompt=chosen.query.strip(),
            model=model,
            locale=fresh.language_code,
            inline_message_id=inline_message_id,
        )
        if not submitted.accepted or submitted.generation_id is None:
            await _edit(bot, inline_message_id, _refusal(submitted, model, fresh, clock))
            return
        if submitted.status is SubmitStatus.WAITING:  # promoted and queued when the user's running job ends
            text = _("⏳ Queued with {model}: it starts when your current image is done.").format(
                model=model_title(model)
            )
            await _edit(bot, inline_message_id, text)
            return
        try:
            await queue.enqueue(submitted.generation_id)
        except Exception:
            await jobs.withdraw(submitted.generation_id)  # nothing is charged; the caller says "busy"
            raise


@contextlib.asynccontextmanager
async def _failure_shown(bot: Bot, inline_message_id: str, user_id: int) -> AsyncIterator[None]:
    """The error handler can only log a chosen result (it has no chat): on a failure the inline
    message says so instead of "generating" for good. An outage is only said, not raised."""
    try:
        yield
    except Exception as exc:
        if not is_outage(exc):
            await _edit(bot, inline_message_id, _("Something went wrong on my side. Please try again in a moment."))
            raise
        log.warning("chosen inline result of %s not handled: %s", user_id, type(exc).__name__)
        await _edit(
            bot, inline_message_id, _("I'm busy right now. Nothing was charged — please try again in a minute.")
        )


def _refusal(submitted: Submitted, model: ModelId, user: UserView, clock: Clock) -> str:
    if submitted.status is SubmitStatus.LIMIT_REACHED and submitted.quota is not None:
        return _("You have used all {limit} images for today. The limit resets at {reset}.").format(
            limit=submitted.quota.limit, reset=format_reset(submitted.quota.resets_at, clock.local_now())
        )
    if submitted.status is SubmitStatus.FORBIDDEN:
        return _("🔒 {model} is available from the {level} level. Choose another model with /generate.").format(
            model=model_title(model), level=level_name(submitted.required_level or user.level)
        )
    if submitted.status is SubmitStatus.TOO_MANY:
        return _(
            "You already have {count} images on the way. Please wait for them (or /cancel the waiting ones)."
        ).format(count=submitted.ahead)
    return _("That description is too long or empty. Please send a shorter text.")


async def _edit(bot: Bot, inline_message_id: str, text: str) -> None:
    try:
        await bot.edit_message_text(text=text, inline_message_id=inline_message_id, reply_markup=again_keyboard())
    except TelegramAPIError as exc:  # deleted meanwhile, or the same text already: nothing more to say
        log.info("inline message not edited: %s", type(exc).__name__)
