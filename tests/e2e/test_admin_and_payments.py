"""Issue 4 end to end: levels, subscriptions, admin commands, bans, Stars payments, broadcasts and
membership, through the real polling bot against the fake Bot API and fake providers."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.levels import Level
from bot.services.users import Profile
from bot.texts import FSI, PDI
from models import Payment, User
from tests.harness import FakeUser, Harness, photo_bytes

pytestmark = pytest.mark.e2e

BOSS = FakeUser(id=7, first_name="Boss", username="boss")
ANN = FakeUser(id=1001, first_name="Ann", username="ann")
IVAN = FakeUser(id=1002, first_name="Иван", username="ivan", language_code="ru")
BOB = FakeUser(id=1003, first_name="Bob", username="bob")
PRO = "black-forest-labs/flux-1.1-pro"
UNKNOWN_COMMAND = "I don't know that command. /help lists what I can do."
UNKNOWN_COMMAND_RU = "Я не знаю такой команды. /help — что я умею."


def admin_harness(tmp_path: Path, clock: ManualClock, **env: Any) -> Harness:
    return Harness(tmp_path, clock, ADMIN_IDS=str(BOSS.id), **env)


async def reply(h: Harness, user: FakeUser, text: str, *, skip: str | None = None, **extra: Any) -> str:
    """Send `text` and return the one message the user got back (asserting there is exactly one),
    ignoring messages whose text is `skip` (the admin's own copy of a broadcast)."""
    mark = h.tg.mark()
    await h.say(user, text, **extra)
    calls = [c for c in h.tg.calls_of("sendMessage", since=mark, chat_id=user.id) if c.params["text"] != skip]
    assert len(calls) == 1 and calls[0].ok, f"{text!r} → {[str(c) for c in calls]}"
    return str(calls[0].result["text"])


async def picker_labels(h: Harness, user: FakeUser) -> list[str]:
    await h.say(user, "/generate")
    return [b["text"] for b in h.tg.sent_messages(user.id)[-1].buttons]


async def snapshot(h: Harness) -> list[tuple[Any, ...]]:
    """Everything an admin command could change, minus last_seen_at (every update refreshes it)."""
    assert h.app is not None
    async with h.app.services.sessions() as session:
        users = (await session.execute(select(User).order_by(User.id))).scalars()
        payments = (await session.execute(select(Payment).order_by(Payment.id))).scalars()
        return [
            *(
                (u.id, u.level, u.level_until, u.is_banned, u.ban_reason, u.ban_notified, u.blocked_bot, u.chosen_model)
                for u in users
            ),
            *((p.charge_id, p.status, p.days) for p in payments),
        ]


# --- 1. levels: /setlevel for days, warning, expiry -------------------------------------------


async def test_setlevel_for_three_days_unlocks_pro_warns_once_then_locks(tmp_path: Path, clock: ManualClock) -> None:
    async with admin_harness(tmp_path, clock) as h:
        await h.say(IVAN, "/start")
        assert (await picker_labels(h, IVAN))[2] == "🔒 FLUX Pro"

        confirmation = await reply(h, BOSS, "/setlevel @ivan subscriber 3")
        assert confirmation == f"{FSI}@ivan{PDI} (1002): level Subscriber until 2026-11-26 12:00 UTC."
        told = h.texts(IVAN)[-1]
        assert told == "Ваш уровень теперь «Подписчик», до 2026-11-26 12:00 UTC."
        user = await h.user(IVAN.id)
        assert (user.level, user.level_until) == (Level.SUBSCRIBER, clock.now() + timedelta(days=3))

        assert (await picker_labels(h, IVAN))[2] == "🚀 FLUX Pro"
        await h.click(IVAN, "pick:flux-pro")
        assert (await h.user(IVAN.id)).chosen_model == "flux-pro"
        await h.say(IVAN, "маяк на закате")
        assert h.replicate.made_by(photo_bytes(h.photos(IVAN)[-1]), PRO)
        assert len(h.replicate.predictions_for(PRO)) == 1
        assert "Уровень: Подписчик до 2026-11-26 12:00 UTC" in await reply(h, IVAN, "/profile")

        assert h.app is not None
        clock.advance(timedelta(days=1, hours=23))  # 25 h left: not yet
        assert await h.app.notifier.check() == 0
        clock.advance(timedelta(hours=2))  # 23 h left
        mark = h.tg.mark()
        assert await h.app.notifier.check() == 1
        assert await h.app.notifier.check() == 0
        await h.restart()  # start-up checks too, and must not warn again
        assert h.app is not None and await h.app.notifier.check() == 0
        warnings = [t for t in h.texts(IVAN, since=mark) if "заканчивается" in t]
        assert warnings == [
            "Ваша подписка заканчивается 2026-11-26 12:00 UTC. "
            "Продлите её через /subscribe, чтобы сохранить FLUX Pro и повышенный лимит."
        ]

        clock.advance(timedelta(hours=23, minutes=1))  # the three days are over
        mark = h.tg.mark()
        # The pass the restart began in the background may get there first: either way, one notice.
        await h.app.notifier.check()
        await h.tg.wait_for("sendMessage", lambda c: "закончилась" in c.params["text"], since=mark, chat_id=IVAN.id)
        assert h.texts(IVAN, since=mark) == ["Ваша подписка закончилась. Продлить: /subscribe."]
        assert await h.app.notifier.check() == 0
        user = await h.user(IVAN.id)
        assert (user.level, user.level_until) == (Level.USER, None)

        assert (await picker_labels(h, IVAN))[2] == "🔒 FLUX Pro"
        mark = h.tg.mark()
        await h.say(IVAN, "ещё один маяк")
        assert h.photos(IVAN, since=mark) == []
        assert "FLUX Pro" in h.texts(IVAN, since=mark)[-1]
        assert len(h.replicate.predictions_for(PRO)) == 1
        profile = await reply(h, IVAN, "/profile")
        assert "Уровень: Пользователь\n" in profile


async def test_startup_check_sends_the_warning_a_stopped_bot_missed(tmp_path: Path, clock: ManualClock) -> None:
    async with admin_harness(tmp_path, clock) as h:
        await h.say(ANN, "/start")
        await reply(h, BOSS, "/setlevel 1001 subscriber 3")
        await h.stop_bot()
        clock.advance(timedelta(days=2, hours=1))
        mark = h.tg.mark()
        await h.start_bot()
        await h.tg.wait_for("sendMessage", chat_id=ANN.id, since=mark, timeout=5)
        assert h.texts(ANN, since=mark) == [
            "Your subscription ends on 2026-11-26 12:00 UTC. "
            "Renew it with /subscribe to keep FLUX Pro and the higher limit."
        ]
        assert h.app is not None and await h.app.notifier.check() == 0
        await h.restart()
        assert len(h.texts(ANN, since=mark)) == 1


async def test_banned_subscriber_is_not_messaged_when_the_level_ends(tmp_path: Path, clock: ManualClock) -> None:
    async with admin_harness(tmp_path, clock) as h:
        await h.say(ANN, "/start")
        await reply(h, BOSS, "/setlevel @ann subscriber 3")
        await reply(h, BOSS, "/ban @ann")
        assert h.app is not None
        mark = h.tg.mark()
        clock.advance(timedelta(days=2, hours=1))
        assert await h.app.notifier.check() == 0
        clock.advance(timedelta(days=1))
        assert await h.app.notifier.check() == 0
        assert h.tg.calls_of("sendMessage", since=mark, chat_id=ANN.id) == []
        user = await h.user(ANN.id)
        assert (user.level, user.level_until, user.is_banned) == (Level.USER, None, True)


# --- 2. admin commands from anyone else --------------------------------------------------------

ADMIN_COMMANDS = [
    "/setlevel", "/setlevel @ann admin", "/setlevel 1001 subscriber 30", "/setlevel @bob admin",
    "/user", "/user @ann", "/user 7",
    "/stats", "/stats 7", "/stats abc",
    "/ban", "/ban @ann spam", "/ban 7",
    "/unban", "/unban @bob",
    "/broadcast", "/broadcast hello everyone",
    "/refund", "/refund stxCHARGE1",
]  # fmt: skip


async def test_non_admin_gets_unknown_command_for_every_admin_command(tmp_path: Path, clock: ManualClock) -> None:
    async with admin_harness(tmp_path, clock) as h:
        for user in (BOSS, ANN, IVAN):
            await h.say(user, "/start")
        assert h.app is not None
        await h.app.services.bans.set_ban(IVAN.id, True, "spam")
        await h.push(h.tg.successful_payment(BOB, "sub:30:250", 250, charge_id="stxCHARGE1"))
        assert (await h.user(BOB.id)).level is Level.SUBSCRIBER
        before = await snapshot(h)
        mark = h.tg.mark()

        for user in (ANN, BOB):
            for command in ADMIN_COMMANDS:
                assert await reply(h, user, command) == UNKNOWN_COMMAND, command
        await h.say(ANN, "/broadcast", reply_to_message_id=h.tg.sent_messages(ANN.id)[-1].result["message_id"])
        assert h.texts(ANN)[-1] == UNKNOWN_COMMAND

        assert await snapshot(h) == before
        assert {c.method for c in h.tg.calls[mark:]} == {"getUpdates", "sendMessage"}
        assert {c.chat_id for c in h.tg.calls_of("sendMessage", since=mark)} == {ANN.id, BOB.id}
        assert h.tg.refunded == set()
        assert await h.generations() == []
        assert h.gemini.requests == [] and h.replicate.requests == [] and h.pollinations.requests == []
        assert h.app is not None and not h.app.services.broadcaster.running


async def test_russian_non_admin_gets_the_russian_unknown_command_reply(tmp_path: Path, clock: ManualClock) -> None:
    async with admin_harness(tmp_path, clock) as h:
        for command in ("/stats", "/setlevel @ivan admin", "/refund x"):
            assert await reply(h, IVAN, command) == UNKNOWN_COMMAND_RU
        assert (await h.user(IVAN.id)).level is Level.USER


# --- 3. /stats and /user count what really happened --------------------------------------------


async def make_generations(h: Harness, clock: ManualClock) -> None:
    """Yesterday: Ann 1 (Gemini). Today: Ann 3 Gemini + 1 FLUX Dev; Bob 1 fallback to FLUX Dev,
    1 fallback to Pollinations, 1 total failure."""
    clock.advance(timedelta(days=-1))
    await h.say(ANN, "yesterday's cat")
    clock.advance(timedelta(days=1))
    for prompt in ("cat one", "cat two", "cat three"):
        await h.say(ANN, prompt)
    await h.click(ANN, "pick:flux-dev")
    await h.say(ANN, "a dev fox")
    h.gemini.behave("status", status=500)
    await h.say(BOB, "bob via dev")
    h.replicate.behave("status", status=502)
    await h.say(BOB, "bob via pollinations")
    h.pollinations.behave("garbage")
    await h.say(BOB, "bob fails")
    for fake in (h.gemini, h.replicate, h.pollinations):
        fake.behave("ok")
    assert len(h.photos(ANN)) == 5 and len(h.photos(BOB)) == 2


async def test_stats_and_user_match_the_generations_made(tmp_path: Path, clock: ManualClock) -> None:
    async with admin_harness(tmp_path, clock) as h:
        await make_generations(h, clock)
        assert [(g.model_requested, g.provider, g.status, g.fallback) for g in await h.generations()] == [
            ("gemini-flash", "gemini", "delivered", False),
            ("gemini-flash", "gemini", "delivered", False),
            ("gemini-flash", "gemini", "delivered", False),
            ("gemini-flash", "gemini", "delivered", False),
            ("flux-dev", "hf-replicate", "delivered", False),
            ("gemini-flash", "hf-replicate", "delivered", True),
            ("gemini-flash", "pollinations", "delivered", True),
            ("gemini-flash", None, "failed", False),
        ]

        stats = (await reply(h, BOSS, "/stats")).split("\n")
        assert stats[:8] == [
            "Stats for 1 day(s)",
            "Users: 3 total, 3 active today, 2 new",
            "Images delivered: 6",
            "By model: gemini-flash: 5, flux-dev: 1",
            "By provider: gemini: 3, hf-replicate: 2, pollinations: 1",
            "Failures: 1",
            "Refused by content filters: 0 (—)",
            "Fallback rate: 33%",
        ]
        assert stats[8].startswith("Median latency: ") and stats[8].endswith(" s")
        assert stats[9:] == ["Top users:", f"• {FSI}@ann{PDI} (1001): 4", f"• {FSI}@bob{PDI} (1003): 2"]

        week = (await reply(h, BOSS, "/stats 2")).split("\n")
        assert week[:8] == [
            "Stats for 2 day(s)",
            "Users: 3 total, 3 active today, 3 new",
            "Images delivered: 7",
            "By model: gemini-flash: 6, flux-dev: 1",
            "By provider: gemini: 4, hf-replicate: 2, pollinations: 1",
            "Failures: 1",
            "Refused by content filters: 0 (—)",
            "Fallback rate: 29%",
        ]
        assert week[9:] == ["Top users:", f"• {FSI}@ann{PDI} (1001): 5", f"• {FSI}@bob{PDI} (1003): 2"]

        ann = (await reply(h, BOSS, "/user @ann")).split("\n")
        assert ann[:8] == [
            f"{FSI}@ann{PDI} (1001)",
            "Level: User",
            "Today: 4 of 5",
            "Total: 5 delivered, 0 failed",
            "Refused by content filters: 0 today, 0 in total",
            "Banned: no",
            "Blocked the bot: no",
            "Last generations:",
        ]
        assert ann[8:] == [
            f"• 2026-11-23 12:00 UTC flux-dev → hf-replicate [delivered] {FSI}a dev fox{PDI}",
            f"• 2026-11-23 12:00 UTC gemini-flash → gemini [delivered] {FSI}cat three{PDI}",
            f"• 2026-11-23 12:00 UTC gemini-flash → gemini [delivered] {FSI}cat two{PDI}",
            f"• 2026-11-23 12:00 UTC gemini-flash → gemini [delivered] {FSI}cat one{PDI}",
            f"• 2026-11-22 12:00 UTC gemini-flash → gemini [delivered] {FSI}yesterday's cat{PDI}",
        ]
        bob = (await reply(h, BOSS, "/user 1003")).split("\n")
        assert bob[2:4] == ["Today: 2 of 5", "Total: 2 delivered, 1 failed"]
        assert bob[8:] == [
            f"• 2026-11-23 12:00 UTC gemini-flash → — [failed] {FSI}bob fails{PDI}",
            f"• 2026-11-23 12:00 UTC gemini-flash → pollinations [delivered] {FSI}bob via pollinations{PDI}",
            f"• 2026-11-23 12:00 UTC gemini-flash → hf-replicate [delivered] {FSI}bob via dev{PDI}",
        ]
        assert (await reply(h, BOSS, "/user @boss")).split("\n")[1:3] == ["Level: Admin", "Today: 0 of unlimited"]


# --- 4. ban / unban -----------------------------------------------------------------------------


async def test_banned_user_gets_one_notice_then_silence_until_unbanned(tmp_path: Path, clock: ManualClock) -> None:
    async with admin_harness(tmp_path, clock) as h:
        await h.say(ANN, "/start")
        assert await reply(h, BOSS, "/ban @ann flooding <the> bot") == f"{FSI}@ann{PDI} (1001) is banned."
        user = await h.user(ANN.id)
        assert (user.is_banned, user.ban_reason, user.ban_notified) == (True, "flooding <the> bot", False)
        assert f"Banned: yes ({FSI}flooding <the> bot{PDI})" in await reply(h, BOSS, "/user 1001")

        mark = h.tg.mark()
        await h.say(ANN, "a cat")
        await h.say(ANN, "/start")
        await h.say(ANN, "/generate")
        await h.click(ANN, "pick:flux-dev")
        await h.push(h.tg.sticker(ANN))
        await h.say(ANN, "/profile")
        ann_calls = [c for c in h.tg.calls[mark:] if c.method not in ("getUpdates", "answerCallbackQuery")]
        assert [(c.method, c.chat_id, c.result["text"]) for c in ann_calls] == [
            ("sendMessage", ANN.id, "You can no longer use this bot.")
        ]
        [spinner] = h.tg.calls_of("answerCallbackQuery", since=mark)
        assert "text" not in spinner.params  # the button stops spinning; nothing is said
        assert await h.generations() == [] and h.gemini.requests == []
        assert (await h.user(ANN.id)).chosen_model == "gemini-flash"

        await h.restart()  # "notified" is stored, not remembered in memory
        mark = h.tg.mark()
        await h.say(ANN, "another cat")
        await h.click(ANN, "pick:flux-dev")
        assert [c for c in h.tg.calls[mark:] if c.method not in ("getUpdates", "answerCallbackQuery")] == []

        assert await reply(h, BOSS, "/unban @ann") == f"{FSI}@ann{PDI} (1001) is unbanned."
        await h.say(ANN, "a cat, again")
        assert len(h.photos(ANN)) == 1
        assert "Banned: no" in await reply(h, BOSS, "/user @ann")

        # Banned again later: one new notice.
        await reply(h, BOSS, "/ban 1001")
        mark = h.tg.mark()
        await h.say(ANN, "x")
        await h.say(ANN, "y")
        assert h.texts(ANN, since=mark) == ["You can no longer use this bot."]


async def test_concurrent_updates_from_a_banned_user_get_one_notice(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock, handle_as_tasks=True, ADMIN_IDS=str(BOSS.id)) as h:
        await h.say(IVAN, "/start")
        await h.tg.wait_for("sendMessage", chat_id=IVAN.id)
        assert h.app is not None
        await h.app.services.bans.set_ban(IVAN.id, True)
        mark = h.tg.mark()
        ids = [h.tg.push(h.tg.message(IVAN, f"prompt {i}")) for i in range(10)]
        await h.tg.processed(ids[-1])
        await h.stop_bot()  # drains the handler tasks
        assert h.texts(IVAN, since=mark) == ["Вы больше не можете пользоваться этим ботом."]
        assert h.gemini.requests == []


async def test_config_admins_cannot_be_banned_or_demoted(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock, ADMIN_IDS=f"{BOSS.id},8") as h:
        other = FakeUser(id=8, first_name="Deputy", username="deputy")
        for user in (BOSS, other, ANN):
            await h.say(user, "/start")
        before = await snapshot(h)
        refused = f"{FSI}@deputy{PDI} (8) is an admin from ADMIN_IDS and cannot be changed by command."
        assert await reply(h, BOSS, "/ban @deputy") == refused
        assert await reply(h, BOSS, "/ban 8 no reason") == refused
        assert await reply(h, BOSS, "/setlevel @deputy user") == refused
        assert await reply(h, BOSS, "/setlevel 8 subscriber 3") == refused
        assert (
            await reply(h, BOSS, "/ban @boss")
            == f"{FSI}@boss{PDI} (7) is an admin from ADMIN_IDS and cannot be changed by command."
        )
        assert await snapshot(h) == before
        assert (await h.user(8)).level is Level.ADMIN
        assert "Stats for 1 day(s)" in await reply(h, other, "/stats")

        # A stored-level admin (not in ADMIN_IDS) can be demoted and banned.
        assert await reply(h, BOSS, "/setlevel @ann admin") == f"{FSI}@ann{PDI} (1001): level Admin."
        assert "Stats for 1 day(s)" in await reply(h, ANN, "/stats")
        assert await reply(h, BOSS, "/setlevel @ann user") == f"{FSI}@ann{PDI} (1001): level User."
        assert await reply(h, ANN, "/stats") == UNKNOWN_COMMAND


# --- 5. Telegram Stars ----------------------------------------------------------------------------

PAYLOAD = "sub:30:250"


async def pay(h: Harness, user: FakeUser, charge_id: str, payload: str = PAYLOAD, amount: int = 250) -> dict[str, Any]:
    """Telegram's side of a purchase: pre-checkout (must be approved), then the payment message."""
    mark = h.tg.mark()
    await h.push(h.tg.pre_checkout(user, payload, amount))
    [answer] = h.tg.calls_of("answerPreCheckoutQuery", since=mark)
    assert answer.params["ok"] is True
    update = h.tg.successful_payment(user, payload, amount, charge_id=charge_id)
    await h.push(dict(update))
    return update


async def pre_checkout_answer(h: Harness, user: FakeUser, payload: str, amount: int, currency: str = "XTR") -> Any:
    mark = h.tg.mark()
    await h.push(h.tg.pre_checkout(user, payload, amount, currency))
    [answer] = h.tg.calls_of("answerPreCheckoutQuery", since=mark)
    assert answer.ok
    return answer.params


async def test_stars_purchase_credits_once_renews_and_refunds(tmp_path: Path, clock: ManualClock) -> None:
    async with admin_harness(tmp_path, clock, SUBSCRIPTION_PLANS="30:250,90:600") as h:
        await h.say(ANN, "/start")
        mark = h.tg.mark()
        await h.say(ANN, "/subscribe")
        invoices = h.tg.calls_of("sendInvoice", since=mark, chat_id=ANN.id)
        assert [(i.ok, i.params["currency"], i.params["payload"], i.params["prices"]) for i in invoices] == [
            (True, "XTR", "sub:30:250", [{"label": "30 days", "amount": 250}]),
            (True, "XTR", "sub:90:600", [{"label": "90 days", "amount": 600}]),
        ]
        assert "provider_token" not in invoices[0].params
        assert invoices[0].result["invoice"]["title"] == "Subscriber for 30 days"

        mark = h.tg.mark()
        first = await pay(h, ANN, "stxFIRST")
        until = clock.now() + timedelta(days=30)
        assert h.texts(ANN, since=mark) == ["Thank you! You are a subscriber until 2026-12-23 12:00 UTC."]
        user = await h.user(ANN.id)
        assert (user.level, user.level_until) == (Level.SUBSCRIBER, until)

        # Telegram delivers the same payment message again (a new update, the same charge).
        repeat = {k: v for k, v in first.items() if k != "update_id"}
        await h.push(repeat)
        assert len(h.tg.calls_of("sendMessage", since=mark, chat_id=ANN.id)) == 1
        assert (await h.user(ANN.id)).level_until == until
        [row] = await h.rows(Payment)
        assert (row.user_id, row.charge_id, row.amount, row.days, row.status) == (ANN.id, "stxFIRST", 250, 30, "paid")

        # A renewal ten days later extends from the current end, not from now.
        clock.advance(timedelta(days=10))
        mark = h.tg.mark()
        await pay(h, ANN, "stxSECOND", "sub:90:600", 600)
        assert (await h.user(ANN.id)).level_until == until + timedelta(days=90)
        assert h.texts(ANN, since=mark) == ["Thank you! You are a subscriber until 2027-03-23 12:00 UTC."]
        assert len(await h.rows(Payment)) == 2

        # The admin refunds the renewal: Telegram is asked, and the 90 days go.
        mark = h.tg.mark()
        done = await reply(h, BOSS, "/refund stxSECOND")
        assert done == (
            f"Refunded 600 ⭐ to {FSI}@ann{PDI} (1001); 90 day(s) taken back. "
            "Level now: Subscriber until 2026-12-23 12:00 UTC."
        )
        [refund] = h.tg.calls_of("refundStarPayment", since=mark)
        assert refund.ok and refund.params["user_id"] == ANN.id
        assert refund.params["telegram_payment_charge_id"] == "stxSECOND"
        assert h.tg.refunded == {"stxSECOND"}
        assert (await h.user(ANN.id)).level_until == until
        rows = {r.charge_id: r.status for r in await h.rows(Payment)}
        assert rows == {"stxFIRST": "paid", "stxSECOND": "refunded"}

        mark = h.tg.mark()
        assert await reply(h, BOSS, "/refund stxSECOND") == "That payment was already refunded."
        assert await reply(h, BOSS, "/refund stxNOPE") == "No payment with that charge id."
        assert h.tg.calls_of("refundStarPayment", since=mark) == []

        # Telegram refusing the refund changes nothing here.
        h.tg.fail("refundStarPayment", status=400, description="Bad Request: BALANCE_TOO_LOW")
        assert await reply(h, BOSS, "/refund stxFIRST") == (
            "Telegram refused the refund; nothing was changed. The log has its reason."
        )
        assert (await h.user(ANN.id)).level_until == until
        assert {r.charge_id: r.status for r in await h.rows(Payment)} == rows

        # Refunding the first too leaves a plain user.
        assert await reply(h, BOSS, "/refund stxFIRST") == (
            f"Refunded 250 ⭐ to {FSI}@ann{PDI} (1001); 30 day(s) taken back. Level now: User."
        )
        user = await h.user(ANN.id)
        assert (user.level, user.level_until) == (Level.USER, None)


async def test_concurrent_payment_updates_credit_each_charge_once(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock, handle_as_tasks=True) as h:
        await h.say(ANN, "/start")
        await h.tg.wait_for("sendMessage", chat_id=ANN.id)
        mark = h.tg.mark()
        updates = [h.tg.successful_payment(ANN, PAYLOAD, 250, charge_id=f"stx{n}") for n in ("A", "A", "A", "B", "B")]
        ids = [h.tg.push(update) for update in updates]
        await h.tg.processed(ids[-1])
        await h.stop_bot()  # drains the handler tasks
        h.app = None
        await h.start_bot()
        assert sorted(r.charge_id for r in await h.rows(Payment)) == ["stxA", "stxB"]
        assert (await h.user(ANN.id)).level_until == clock.now() + timedelta(days=60)
        thanks = [t for t in h.texts(ANN, since=mark) if t.startswith("Thank you")]
        assert len(thanks) == 2


async def test_pre_checkout_refuses_wrong_amount_unknown_payload_and_banned_payer(
    tmp_path: Path, clock: ManualClock
) -> None:
    async with admin_harness(tmp_path, clock) as h:
        await h.say(ANN, "/start")
        approved = await pre_checkout_answer(h, ANN, PAYLOAD, 250)
        assert approved["ok"] is True and "error_message" not in approved
        wrong = await pre_checkout_answer(h, ANN, PAYLOAD, 1)
        assert wrong["ok"] is False and "price has changed" in wrong["error_message"]
        assert (await pre_checkout_answer(h, ANN, PAYLOAD, 250, currency="USD"))["ok"] is False
        unknown = await pre_checkout_answer(h, ANN, "sub:30:1", 1)
        assert unknown["ok"] is False and "no longer available" in unknown["error_message"]
        assert (await pre_checkout_answer(h, ANN, "garbage", 250))["ok"] is False

        await reply(h, BOSS, "/ban @ann")
        banned = await pre_checkout_answer(h, ANN, PAYLOAD, 250)
        assert banned["ok"] is False and "not available for this account" in banned["error_message"]
        assert len(h.texts(ANN)) == 1  # the /start greeting: the refusal is the pre-checkout answer
        assert await h.rows(Payment) == []
        assert (await h.user(ANN.id)).level is Level.USER


async def test_payment_completed_after_a_ban_is_still_recorded(tmp_path: Path, clock: ManualClock) -> None:
    """The money moved before the ban: the payment must be stored (and so refundable), not dropped."""
    async with admin_harness(tmp_path, clock) as h:
        await h.say(ANN, "/start")
        await h.push(h.tg.pre_checkout(ANN, PAYLOAD, 250))
        await reply(h, BOSS, "/ban @ann")
        await h.push(h.tg.successful_payment(ANN, PAYLOAD, 250, charge_id="stxLATE"))
        [row] = await h.rows(Payment)
        assert (row.charge_id, row.user_id, row.status) == ("stxLATE", ANN.id, "paid")
        assert (await reply(h, BOSS, "/refund stxLATE")).startswith(f"Refunded 250 ⭐ to {FSI}@ann{PDI} (1001)")
        assert h.tg.refunded == {"stxLATE"}


async def test_subscribe_disabled_and_paysupport(tmp_path: Path, clock: ManualClock) -> None:
    async with admin_harness(tmp_path, clock, SUBSCRIPTION_PLANS="", PAYSUPPORT_CONTACT="@helpdesk") as h:
        assert await reply(h, ANN, "/subscribe") == "Subscriptions are not on sale in this bot right now."
        assert h.tg.calls_of("sendInvoice") == []
        support = await reply(h, ANN, "/paysupport")
        assert "Payment questions" in support and support.endswith("Contact: @helpdesk")
        assert (await pre_checkout_answer(h, ANN, PAYLOAD, 250))["ok"] is False
        ru = await reply(h, IVAN, "/paysupport")
        assert "Payment questions" not in ru and "@helpdesk" in ru


# --- 6. broadcast -----------------------------------------------------------------------------


async def add_users(h: Harness, ids: range) -> None:
    """Users who started the bot earlier (registered directly: 50 /start round trips add nothing)."""
    assert h.app is not None
    for user_id in ids:
        await h.app.services.users.register(Profile(id=user_id, first_name=f"U{user_id}", username=f"u{user_id}"))


async def test_broadcast_to_fifty_counts_blocked_waits_out_429_and_keeps_answering(
    tmp_path: Path, clock: ManualClock
) -> None:
    async with admin_harness(tmp_path, clock) as h:
        await h.say(BOSS, "/start")
        await add_users(h, range(2001, 2050))  # 49 users + the admin = 50 recipients
        await add_users(h, range(3001, 3003))  # banned and blocked-already: skipped
        assert h.app is not None
        await h.app.services.bans.set_ban(3001, True)
        await h.app.services.audience.set_blocked(3002, True)
        for user_id in (2005, 2017, 2033):
            h.tg.block(user_id)
        h.tg.fail("sendMessage", status=403, description="Forbidden: user is deactivated", chat_id=2040)
        throttled = h.tg.fail("sendMessage", status=429, retry_after=1, chat_id=2010)

        mark = h.tg.mark()
        started = await reply(h, BOSS, "/broadcast Hello <everyone> & welcome", skip="Hello <everyone> & welcome")
        assert started == "Broadcast started to 50 users. I will report when it is done."

        # The broadcast is a background task: another user is answered while it runs.
        asked = h.tg.mark()
        await h.say(ANN, "/help")
        [help_reply] = h.tg.calls_of("sendMessage", since=asked, chat_id=ANN.id)
        assert h.app.services.broadcaster.running

        report = await h.tg.wait_for(
            "sendMessage", lambda c: "Broadcast finished" in c.params["text"], since=mark, timeout=20, chat_id=BOSS.id
        )
        assert report.result["text"] == "Broadcast finished: 46 delivered, 4 failed (4 blocked the bot) of 50."
        assert help_reply.time < report.time

        sends = [c for c in h.tg.calls_of("sendMessage", since=mark) if c.params["text"].startswith("Hello")]
        delivered = {c.chat_id for c in sends if c.ok}
        assert len(delivered) == 46 and BOSS.id in delivered and 2010 in delivered
        assert {c.chat_id for c in sends if not c.ok} == {2005, 2017, 2033, 2040, 2010}
        assert all(c.params["text"] == "Hello <everyone> & welcome" for c in sends)
        assert throttled.hits == 1 and len([c for c in sends if c.chat_id == 2010]) == 2
        assert not {3001, 3002} & {c.chat_id for c in sends}
        assert ANN.id not in {c.chat_id for c in sends}  # joined after the list was taken

        for user_id in (2005, 2017, 2033, 2040):
            assert (await h.user(user_id)).blocked_bot is True
        assert (await h.user(2010)).blocked_bot is False
        assert "Blocked the bot: yes" in await reply(h, BOSS, "/user @u2017")
        assert await h.app.services.audience.active_ids() == sorted(
            {BOSS.id, ANN.id, *range(2001, 2050)} - {2005, 2017, 2033, 2040}
        )


async def test_broadcast_replying_to_a_message_copies_it(tmp_path: Path, clock: ManualClock) -> None:
    async with admin_harness(tmp_path, clock) as h:
        await h.say(ANN, "/start")
        await h.say(IVAN, "/start")
        news = h.tg.photo(BOSS, caption="New models are here!")
        await h.push(news)
        mark = h.tg.mark()
        started = await reply(h, BOSS, "/broadcast", reply_to_message_id=news["message"]["message_id"])
        assert started == "Broadcast started to 3 users. I will report when it is done."
        report = await h.tg.wait_for(
            "sendMessage", lambda c: "Broadcast finished" in c.params["text"], since=mark, chat_id=BOSS.id
        )
        assert report.result["text"] == "Broadcast finished: 3 delivered, 0 failed (0 blocked the bot) of 3."
        copies = h.tg.calls_of("copyMessage", since=mark)
        assert sorted(c.chat_id for c in copies) == sorted([BOSS.id, ANN.id, IVAN.id]) and all(c.ok for c in copies)
        assert {(c.params["from_chat_id"], c.params["message_id"]) for c in copies} == {
            (BOSS.id, news["message"]["message_id"])
        }
        ann_copy = next(c for c in copies if c.chat_id == ANN.id)
        copied = h.tg.message_state(ANN.id, ann_copy.result["message_id"])
        assert copied is not None and copied["caption"] == "New models are here!" and "photo" in copied
        assert not [c for c in h.tg.calls_of("sendMessage", since=mark) if c.chat_id != BOSS.id]


async def test_second_broadcast_while_one_runs_is_refused(tmp_path: Path, clock: ManualClock) -> None:
    async with admin_harness(tmp_path, clock, BROADCAST_RATE=2) as h:
        await h.say(BOSS, "/start")
        await add_users(h, range(2001, 2005))
        started = await reply(h, BOSS, "/broadcast one", skip="one")
        assert started == "Broadcast started to 5 users. I will report when it is done."
        assert (
            await reply(h, BOSS, "/broadcast two", skip="one") == "A broadcast is already running; wait for its report."
        )
        await h.tg.wait_for("sendMessage", lambda c: "Broadcast finished" in c.params["text"], timeout=10)
        assert [c.params["text"] for c in h.tg.calls_of("sendMessage", chat_id=2001)] == ["one"]


# --- 7. bad arguments ---------------------------------------------------------------------------

SETLEVEL_USAGE = "Usage: /setlevel <user_id|@username> <user|subscriber|admin> [days]"
NO_SUCH = "No such user: {}. They must have started the bot."
DAYS = "Days must be a whole number from 1 to 3650."
STATS_USAGE = "Usage: /stats [days], days from 1 to 365"
BAD_ARGUMENTS = [
    ("/setlevel", SETLEVEL_USAGE),
    ("/setlevel @ann", SETLEVEL_USAGE),
    ("/setlevel @ann subscriber 3 extra", SETLEVEL_USAGE),
    ("/setlevel @ann king 3", SETLEVEL_USAGE),
    ("/setlevel @nobody subscriber 3", NO_SUCH.format("@nobody")),
    ("/setlevel 424242 subscriber", NO_SUCH.format("424242")),
    ("/setlevel 99999999999999999999999 subscriber", NO_SUCH.format("99999999999999999999999")),
    ("/setlevel @ann subscriber -3", DAYS),
    ("/setlevel @ann subscriber 0", DAYS),
    ("/setlevel @ann subscriber 3.5", DAYS),
    ("/setlevel @ann subscriber 99999999", DAYS),
    ("/setlevel @ann subscriber " + "9" * 4000, DAYS),
    ("/setlevel @ann subscriber ²", DAYS),
    ("/setlevel ² subscriber", NO_SUCH.format("²")),
    ("/user", "Usage: /user <user_id|@username>"),
    ("/user @ann @bob", "Usage: /user <user_id|@username>"),
    ("/user @", NO_SUCH.format("@")),
    ("/user <b>", NO_SUCH.format("<b>")),
    ("/user -99999999999999999999999", NO_SUCH.format("-99999999999999999999999")),
    ("/user " + "9" * 4000, NO_SUCH.format("9" * 63 + "…")),
    ("/ban @" + "x" * 4000, NO_SUCH.format("@" + "x" * 62 + "…")),
    ("/stats abc", STATS_USAGE),
    ("/stats 0", STATS_USAGE),
    ("/stats -1", STATS_USAGE),
    ("/stats 100000", STATS_USAGE),
    ("/stats 1 2", STATS_USAGE),
    ("/stats ³", STATS_USAGE),
    ("/stats " + "1" * 4000, STATS_USAGE),
    ("/ban", "Usage: /ban <user_id|@username> [reason]"),
    ("/ban @nobody spam", NO_SUCH.format("@nobody")),
    ("/unban", "Usage: /unban <user_id|@username>"),
    ("/unban @ann now", "Usage: /unban <user_id|@username>"),
    ("/unban 31337", NO_SUCH.format("31337")),
    ("/broadcast", "Usage: /broadcast <text>, or reply /broadcast to a message to copy it"),
    ("/broadcast    ", "Usage: /broadcast <text>, or reply /broadcast to a message to copy it"),
    ("/refund", "Usage: /refund <telegram_payment_charge_id>"),
    ("/refund a b", "Usage: /refund <telegram_payment_charge_id>"),
    ("/refund stxUNKNOWN", "No payment with that charge id."),
]


async def test_bad_arguments_get_a_one_line_usage_message(tmp_path: Path, clock: ManualClock) -> None:
    async with admin_harness(tmp_path, clock) as h:
        for user in (BOSS, ANN):
            await h.say(user, "/start")
        before = await snapshot(h)
        mark = h.tg.mark()
        for command, expected in BAD_ARGUMENTS:
            assert await reply(h, BOSS, command) == expected, command
        assert await snapshot(h) == before
        assert {c.method for c in h.tg.calls[mark:]} == {"getUpdates", "sendMessage"}
        assert {c.chat_id for c in h.tg.calls_of("sendMessage", since=mark)} == {BOSS.id}
        assert h.tg.calls_of("sendMessage", ok=False) == []


async def test_russian_admin_gets_russian_usage(tmp_path: Path, clock: ManualClock) -> None:
    async with Harness(tmp_path, clock, ADMIN_IDS=str(IVAN.id)) as h:
        assert await reply(h, IVAN, "/setlevel") == (
            "Использование: /setlevel <user_id|@username> <user|subscriber|admin> [дни]"
        )
        assert await reply(h, IVAN, "/stats abc") == "Использование: /stats [дни], от 1 до 365"


# --- 8. my_chat_member ------------------------------------------------------------------------


async def test_blocking_and_unblocking_the_bot_is_tracked(tmp_path: Path, clock: ManualClock) -> None:
    async with admin_harness(tmp_path, clock) as h:
        await h.say(ANN, "/start")
        mark = h.tg.mark()
        await h.push(h.tg.my_chat_member(ANN, "kicked"))
        assert (await h.user(ANN.id)).blocked_bot is True
        assert "Blocked the bot: yes" in await reply(h, BOSS, "/user @ann")
        assert h.app is not None and ANN.id not in await h.app.services.audience.active_ids()
        await h.push(h.tg.my_chat_member(ANN, "member"))
        assert (await h.user(ANN.id)).blocked_bot is False
        assert "Blocked the bot: no" in await reply(h, BOSS, "/user @ann")
        assert ANN.id in await h.app.services.audience.active_ids()
        assert h.tg.calls_of("sendMessage", since=mark, chat_id=ANN.id) == []

        # A banned user's membership changes are still recorded, silently.
        await reply(h, BOSS, "/ban @ann")
        await h.push(h.tg.my_chat_member(ANN, "kicked"))
        assert (await h.user(ANN.id)).blocked_bot is True
        assert h.tg.calls_of("sendMessage", since=mark, chat_id=ANN.id) == []
