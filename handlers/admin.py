"""Admin commands. To anyone else they are unknown commands: the filter fails and the fallback answers."""

from __future__ import annotations

import asyncio
import html
import logging

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError
from aiogram.filters import Command, CommandObject, Filter
from aiogram.types import BufferedInputFile, CallbackQuery, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.broadcast import Broadcaster, BroadcastResult
from bot.charts import ChartLabels, stats_chart_png
from bot.clock import Clock
from bot.i18n import pick_locale
from bot.levels import Level
from bot.services.bans import BanService
from bot.services.refunds import RefundResult, RefundService
from bot.services.reports import ReportService
from bot.services.user_levels import LevelService
from bot.services.users import UserService, UserView
from bot.star_refunds import StarRefunder
from bot.texts import format_date, isolate, level_name, level_with_end, limit_text, truncate, user_label
from keyboards.moderation import BanUser

log = logging.getLogger(__name__)

MAX_DAYS = 3650
MAX_STATS_DAYS = 365
CHART_DAYS = 14


class IsAdmin(Filter):
    async def __call__(self, event: Message | CallbackQuery, user: UserView | None = None) -> bool:
        return user is not None and user.level is Level.ADMIN


def router_factory() -> Router:
    router = Router(name="admin")
    router.message.filter(IsAdmin())
    router.message.register(on_setlevel, Command("setlevel"))
    router.message.register(on_user, Command("user"))
    router.message.register(on_stats, Command("stats"))
    router.message.register(on_ban, Command("ban"))
    router.message.register(on_unban, Command("unban"))
    router.message.register(on_broadcast, Command("broadcast"))
    router.message.register(on_refund, Command("refund"))
    router.callback_query.register(on_ban_button, BanUser.filter(), IsAdmin())
    return router


def _args(command: CommandObject) -> list[str]:
    return (command.args or "").split()


def _whole(text: str, maximum: int) -> int | None:
    """A whole number from 1 to `maximum`, or None. isdecimal, not isdigit: int("²") raises, and so
    does int() of a 5000-digit string, hence the length check first."""
    if not text.isdecimal() or len(text) > len(str(maximum)):
        return None
    value = int(text)
    return value if 1 <= value <= maximum else None


async def _usage(message: Message, text: str) -> None:
    """Usage lines show <placeholders>, which Telegram's HTML parser would reject: escape them."""
    await message.answer(html.escape(text, quote=False))


async def _find(message: Message, users: UserService, ref: str) -> UserView | None:
    """The user `ref` names, or None after telling the admin. The reference is echoed cut short:
    a 4000-character argument must not make the reply too long."""
    target = await users.find(ref)
    if target is None:
        await message.answer(
            _("No such user: {ref}. They must have started the bot.").format(ref=html.escape(truncate(ref, 64)))
        )
    return target


async def on_setlevel(
    message: Message,
    command: CommandObject,
    users: UserService,
    levels: LevelService,
    bot: Bot,
    i18n_core: I18n,
    clock: Clock,
) -> None:
    usage = _("Usage: /setlevel <user_id|@username> <user|subscriber|admin> [days]")
    args = _args(command)
    if len(args) not in (2, 3):
        await _usage(message, usage)
        return
    target = await _find(message, users, args[0])
    if target is None:
        return
    try:
        level = Level(args[1].lower())
    except ValueError:
        await _usage(message, usage)
        return
    days: int | None = None
    if len(args) == 3:
        days = _whole(args[2], MAX_DAYS)
        if days is None:
            await message.answer(_("Days must be a whole number from 1 to {max}.").format(max=MAX_DAYS))
            return
    updated = await levels.set_level(target.id, level, days)  # AdminProtected: answered by the error router
    until = format_date(updated.level_until, clock.tz) if updated.level_until else None
    await message.answer(
        _("{who}: level {level}{until}.").format(
            who=user_label(updated),
            level=level_name(level),
            until=_(" until {date}").format(date=until) if until else "",
        )
    )
    locale = pick_locale(updated.language_code)
    if until:
        text = i18n_core.gettext("Your level is now {level}, until {date}.", locale=locale)
    else:
        text = i18n_core.gettext("Your level is now {level}.", locale=locale)
    with i18n_core.use_locale(locale):
        text = text.format(level=level_name(level), date=until)
    try:
        await bot.send_message(updated.id, text)
    except TelegramForbiddenError:
        await message.answer(_("The level is set, but the user has blocked the bot and was not told."))
    except TelegramAPIError as exc:
        log.warning("level notice to %s failed: %s", updated.id, type(exc).__name__)
        await message.answer(_("The level is set, but Telegram did not deliver the notice to the user."))


async def on_user(
    message: Message, command: CommandObject, users: UserService, reports: ReportService, clock: Clock
) -> None:
    args = _args(command)
    if len(args) != 1:
        await _usage(message, _("Usage: /user <user_id|@username>"))
        return
    target = await _find(message, users, args[0])
    if target is None:
        return
    report = await reports.user_report(target)
    level = level_with_end(target.level, target.level_until, clock.tz)
    yes, no = _("yes"), _("no")
    lines = [
        f"<b>{user_label(target)}</b>",
        _("Level: {level}").format(level=level),
        _("Today: {used} of {limit}").format(used=report.quota.used, limit=limit_text(report.quota.limit)),
        _("Total: {delivered} delivered, {failed} failed").format(
            delivered=report.delivered_total, failed=report.failed_total
        ),
        _("Refused by content filters: {today} today, {total} in total").format(
            today=report.refused_today, total=report.refused_total
        ),
        _("Banned: {banned}").format(
            banned=(yes + (f" ({isolate(target.ban_reason)})" if target.ban_reason else "")) if target.is_banned else no
        ),
        _("Blocked the bot: {blocked}").format(blocked=yes if target.blocked_bot else no),
    ]
    if report.recent:
        lines.append(_("Last generations:"))
        for g in report.recent:
            status = g.status
            if g.refusal_reason:  # what the filter said, e.g. "finishReason IMAGE_SAFETY"
                status += ": " + truncate(g.refusal_reason, 60)
            lines.append(
                "• {when} {model} → {provider} [{status}] {prompt}".format(
                    when=format_date(g.created_at, clock.tz),
                    model=g.model_requested,
                    provider=html.escape(g.provider or "—"),
                    status=html.escape(status),
                    prompt=isolate(truncate(g.prompt, 60)),
                )
            )
    await message.answer("\n".join(lines))  # bounded: 5 lines of at most ~210 characters each


async def on_stats(message: Message, command: CommandObject, reports: ReportService) -> None:
    args = _args(command)
    days = 1
    if args:
        parsed = _whole(args[0], MAX_STATS_DAYS) if len(args) == 1 else None
        if parsed is None:
            await _usage(message, _("Usage: /stats [days], days from 1 to {max}").format(max=MAX_STATS_DAYS))
            return
        days = parsed
    s = await reports.stats(days)

    def table(counts: dict[str, int]) -> str:
        return ", ".join(f"{html.escape(k)}: {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])) or "—"

    lines = [
        _("<b>Stats for {days} day(s)</b>").format(days=days),
        _("Users: {total} total, {active} active today, {new} new").format(
            total=s.users_total, active=s.active_today, new=s.new_users
        ),
        _("Images delivered: {n}").format(n=s.delivered),
        _("By model: {table}").format(table=table(s.by_model)),
        _("By provider: {table}").format(table=table(s.by_provider)),
        _("Failures: {n}").format(n=s.failed),
        _("Refused by content filters: {n} ({table})").format(n=s.refused, table=table(s.refused_by_provider)),
        _("Fallback rate: {rate:.0%}").format(rate=s.fallback_rate),
        _("Median latency: {latency}").format(
            latency=f"{s.median_latency_ms / 1000:.1f} s" if s.median_latency_ms is not None else "—"
        ),
    ]
    if s.top_users:
        lines.append(_("Top users:"))
        lines += [f"• {isolate(name)} ({uid}): {n}" for uid, name, n in s.top_users]
    await message.answer("\n".join(lines))
    await _send_chart(message, reports)


async def _send_chart(message: Message, reports: ReportService) -> None:
    """The last 14 days as a PNG, drawn in a thread (matplotlib is slow and synchronous)."""
    labels = ChartLabels(
        title=_("Generations per day, last {days} days").format(days=CHART_DAYS),
        images=_("Images delivered"),
        rates=_("Rate"),
        failures=_("Failure rate"),
        fallbacks=_("Fallback rate"),
    )
    days = await reports.daily(CHART_DAYS)
    try:
        png = await asyncio.to_thread(stats_chart_png, days, labels)
    except Exception:  # the numbers are sent already; a chart that cannot be drawn is logged
        log.exception("stats chart not drawn")
        await message.answer(_("The chart could not be drawn this time."))
        return
    await message.answer_photo(BufferedInputFile(png, filename="stats.png"), caption=labels.title)


async def on_ban(message: Message, command: CommandObject, users: UserService, bans: BanService) -> None:
    args = (command.args or "").split(maxsplit=1)
    if not args:
        await _usage(message, _("Usage: /ban <user_id|@username> [reason]"))
        return
    target = await _find(message, users, args[0])
    if target is None:
        return
    reason = truncate(args[1].strip(), 200) if len(args) > 1 else None
    await bans.set_ban(target.id, True, reason)  # AdminProtected: answered by the error router
    await message.answer(_("{who} is banned.").format(who=user_label(target)))


async def on_ban_button(callback: CallbackQuery, callback_data: BanUser, users: UserService, bans: BanService) -> None:
    """The button under a refusal alert. Answered first (a callback expires within seconds); the alert
    then says who was banned and loses its button, so every admin sees it was handled."""
    target = await users.get(callback_data.user_id)
    if target is None:
        text = _("No such user: {ref}. They must have started the bot.").format(ref=callback_data.user_id)
        await callback.answer(text, show_alert=True)
        return
    banned = await bans.set_ban(target.id, True, _("many prompts refused by content filters"))
    done = _("{who} is banned.").format(who=user_label(banned))
    await callback.answer(html.unescape(done))
    message = callback.message
    if isinstance(message, Message) and message.html_text:
        try:
            await message.edit_text(f"{message.html_text}\n\n{done}", reply_markup=None)
        except TelegramAPIError as exc:  # an old or already-edited alert: the ban itself stands
            log.info("refusal alert not updated: %s", type(exc).__name__)


async def on_unban(message: Message, command: CommandObject, users: UserService, bans: BanService) -> None:
    args = _args(command)
    if len(args) != 1:
        await _usage(message, _("Usage: /unban <user_id|@username>"))
        return
    target = await _find(message, users, args[0])
    if target is None:
        return
    await bans.set_ban(target.id, False)
    await message.answer(_("{who} is unbanned.").format(who=user_label(target)))


async def on_broadcast(
    message: Message, command: CommandObject, bot: Bot, broadcaster: Broadcaster, i18n_core: I18n, user: UserView
) -> None:
    source = message.reply_to_message
    text = (command.args or "").strip()
    if source is None and not text:
        await _usage(message, _("Usage: /broadcast <text>, or reply /broadcast to a message to copy it"))
        return
    if source is not None:

        async def send(chat_id: int) -> object:
            return await bot.copy_message(chat_id, message.chat.id, source.message_id)
    else:

        async def send(chat_id: int) -> object:
            return await bot.send_message(chat_id, text, parse_mode=None)

    locale = pick_locale(user.language_code)
    admin_chat = message.chat.id

    async def report(result: BroadcastResult) -> object:
        summary = i18n_core.gettext(
            "Broadcast finished: {delivered} delivered, {failed} failed ({blocked} blocked the bot) of {total}.",
            locale=locale,
        ).format(delivered=result.delivered, failed=result.failed, blocked=result.blocked, total=result.total)
        return await bot.send_message(admin_chat, summary)

    count = await broadcaster.start(send, report)
    if count is None:
        await message.answer(_("A broadcast is already running; wait for its report."))
        return
    await message.answer(_("Broadcast started to {n} users. I will report when it is done.").format(n=count))


async def on_refund(message: Message, command: CommandObject, bot: Bot, refunds: RefundService, clock: Clock) -> None:
    """Safe to repeat: bot.services.refunds records the intent first and finishes an unfinished one."""
    args = _args(command)
    if len(args) != 1:
        await _usage(message, _("Usage: /refund <telegram_payment_charge_id>"))
        return
    outcome = await refunds.refund(args[0], StarRefunder(bot))
    if outcome.result is RefundResult.REFUNDED and outcome.payment is not None and outcome.user is not None:
        target = outcome.user
        level = level_with_end(target.level, target.level_until, clock.tz)
        text = _("Refunded {stars} ⭐ to {who}; {days} day(s) taken back. Level now: {level}.").format(
            stars=outcome.payment.amount, who=user_label(target), days=outcome.payment.days_taken, level=level
        )
    else:
        text = _refund_problem(outcome.result)
    await message.answer(text)


def _refund_problem(result: RefundResult) -> str:
    texts = {
        RefundResult.UNKNOWN: _("No payment with that charge id."),
        RefundResult.ALREADY: _("That payment was already refunded."),
        RefundResult.NO_ANSWER: _(
            "Telegram did not answer, so the refund may or may not have gone through. "
            "Send the same /refund again: it is safe to repeat."
        ),
        RefundResult.REJECTED: _("Telegram refused the refund; nothing was changed. The log has its reason."),
        RefundResult.NOT_RECORDED: _(
            "Telegram refunded the Stars, but recording it failed. Send the same /refund again to finish."
        ),
    }
    return texts.get(result, _("That payment was already refunded."))
