"""Issue 8, money: a paid charge is never lost, and a refund is never half-done — through the real
polling bot against the fake Bot API. Database failures are real: a SQLite trigger makes the one
write under test fail, as a locked or vanished database would."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bot.clock import ManualClock
from bot.levels import Level
from bot.texts import FSI, PDI
from models import Payment, PaymentStatus
from tests.harness import FakeUser, Harness

pytestmark = pytest.mark.e2e

BOSS = FakeUser(id=7, first_name="Boss", username="boss")
ANN = FakeUser(id=1001, first_name="Ann", username="ann")
IVAN = FakeUser(id=1002, first_name="Иван", username="ivan", language_code="ru")
PAYLOAD = "sub:30:250"
LATER = "Payment received. Your days will be added within a few minutes; I will write when they are."


@asynccontextmanager
async def failing_writes(h: Harness, event: str, when: str = "1") -> AsyncIterator[None]:
    """Every `event` (INSERT or UPDATE) on payments matching `when` fails while the block runs."""
    assert h.app is not None
    async with h.app.services.sessions.begin() as session:
        await session.execute(
            text(
                f"CREATE TRIGGER fail_payments BEFORE {event} ON payments WHEN {when} "
                "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
            )
        )
    try:
        yield
    finally:
        assert h.app is not None
        async with h.app.services.sessions.begin() as session:
            await session.execute(text("DROP TRIGGER fail_payments"))


async def reply(h: Harness, user: FakeUser, command: str) -> str:
    mark = h.tg.mark()
    await h.say(user, command)
    [answer] = h.tg.calls_of("sendMessage", since=mark, chat_id=user.id)
    return str(answer.result["text"])


async def pay(h: Harness, user: FakeUser, charge_id: str) -> None:
    await h.push(h.tg.pre_checkout(user, PAYLOAD, 250))
    await h.push(h.tg.successful_payment(user, PAYLOAD, 250, charge_id=charge_id))


async def status(h: Harness, charge_id: str) -> PaymentStatus:
    [row] = [r for r in await h.rows(Payment) if r.charge_id == charge_id]
    return PaymentStatus(row.status)


def admin_harness(tmp_path: Path, clock: ManualClock, **env: Any) -> Harness:
    return Harness(tmp_path, clock, ADMIN_IDS=str(BOSS.id), **env)


async def test_a_payment_whose_crediting_fails_is_credited_at_start_up(tmp_path: Path, clock: ManualClock) -> None:
    async with admin_harness(tmp_path, clock) as h:
        await h.say(IVAN, "/start")
        mark = h.tg.mark()
        async with failing_writes(h, "UPDATE", "NEW.status = 'paid'"):
            await pay(h, IVAN, "stxLATE")
            assert h.texts(IVAN, since=mark) == [
                "Оплата получена. Дни добавятся в течение нескольких минут — я напишу, когда это произойдёт."
            ]
            assert await status(h, "stxLATE") is PaymentStatus.RECEIVED
            assert (await h.user(IVAN.id)).level is Level.USER
            mark = h.tg.mark()
        await h.restart()  # start-up credits what was left uncredited
        thanks = await h.tg.wait_for("sendMessage", since=mark, chat_id=IVAN.id, timeout=10)
        assert thanks.result["text"] == "Спасибо! Вы подписчик до 2026-12-23 12:00 UTC."
        user = await h.user(IVAN.id)
        assert (user.level, user.level_until) == (Level.SUBSCRIBER, clock.now() + timedelta(days=30))
        assert await status(h, "stxLATE") is PaymentStatus.PAID

        await h.restart()  # credited once: nothing more to say
        assert h.app is not None and await h.app.crediting.run() == 0
        assert len(h.texts(IVAN, since=mark)) == 1
        assert (await h.user(IVAN.id)).level_until == clock.now() + timedelta(days=30)


async def test_the_crediting_loop_retries_until_the_write_lands(tmp_path: Path, clock: ManualClock) -> None:
    async with admin_harness(tmp_path, clock) as h:
        await h.say(ANN, "/start")
        async with failing_writes(h, "UPDATE", "NEW.status = 'paid'"):
            await pay(h, ANN, "stxRETRY")
            assert h.texts(ANN)[-1] == LATER
            assert h.app is not None
            mark = h.tg.mark()
            assert await h.app.crediting.run() == 0  # still failing: kept for the next round
        await h.app.crediting.run()  # (the start-up round, if late under load, may be the one that lands)
        await h.tg.wait_for("sendMessage", since=mark, chat_id=ANN.id, timeout=10)
        assert h.texts(ANN, since=mark) == ["Thank you! You are a subscriber until 2026-12-23 12:00 UTC."]
        assert await h.app.crediting.run() == 0
        assert (await h.user(ANN.id)).level is Level.SUBSCRIBER


async def test_refund_works_for_a_charge_that_was_never_credited(tmp_path: Path, clock: ManualClock) -> None:
    async with admin_harness(tmp_path, clock) as h:
        await h.say(ANN, "/start")
        async with failing_writes(h, "UPDATE", "NEW.status = 'paid'"):  # crediting keeps failing throughout
            await pay(h, ANN, "stxNEVER")
            assert await reply(h, BOSS, "/refund stxNEVER") == (
                f"Refunded 250 ⭐ to {FSI}@ann{PDI} (1001); 0 day(s) taken back. Level now: User."
            )
        assert h.tg.refunded == {"stxNEVER"}
        assert h.app is not None and await h.app.crediting.run() == 0  # refunded: never credited after all
        assert (await h.user(ANN.id)).level is Level.USER
        assert await status(h, "stxNEVER") is PaymentStatus.REFUNDED


async def test_a_payment_that_cannot_even_be_stored_is_logged_with_everything_needed(
    tmp_path: Path, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with admin_harness(tmp_path, clock) as h:
        await h.say(ANN, "/start")
        mark = h.tg.mark()
        with caplog.at_level(logging.ERROR):
            async with failing_writes(h, "INSERT"):
                await pay(h, ANN, "stxLOST")
        [record] = [r for r in caplog.records if "stxLOST" in r.getMessage()]
        assert record.levelno == logging.ERROR
        assert "1001" in record.getMessage() and "250 XTR" in record.getMessage()
        assert h.texts(ANN, since=mark) == [
            "Your payment went through, but I could not record it just now. It is not lost: "
            "send /paysupport and quote this payment id: stxLOST"
        ]
        assert await h.rows(Payment) == []


async def test_a_refund_whose_record_failed_is_finished_by_asking_again(tmp_path: Path, clock: ManualClock) -> None:
    async with admin_harness(tmp_path, clock) as h:
        await h.say(ANN, "/start")
        await pay(h, ANN, "stxHALF")
        async with failing_writes(h, "UPDATE", "NEW.status = 'refunded'"):
            answer = await reply(h, BOSS, "/refund stxHALF")
        assert answer == "Telegram refunded the Stars, but recording it failed. Send the same /refund again to finish."
        assert h.tg.refunded == {"stxHALF"}
        assert await status(h, "stxHALF") is PaymentStatus.REFUNDING  # the intent was recorded first
        assert (await h.user(ANN.id)).level is Level.SUBSCRIBER

        mark = h.tg.mark()
        assert await reply(h, BOSS, "/refund stxHALF") == (
            f"Refunded 250 ⭐ to {FSI}@ann{PDI} (1001); 30 day(s) taken back. Level now: User."
        )
        [again] = h.tg.calls_of("refundStarPayment", since=mark, ok=False)
        assert again.error is not None and "CHARGE_ALREADY_REFUNDED" in again.error  # success for us
        assert (await h.user(ANN.id)).level is Level.USER
        assert await reply(h, BOSS, "/refund stxHALF") == "That payment was already refunded."


async def test_a_refund_with_no_answer_from_telegram_keeps_the_intent(tmp_path: Path, clock: ManualClock) -> None:
    async with admin_harness(tmp_path, clock) as h:
        await h.say(ANN, "/start")
        await pay(h, ANN, "stxQUIET")
        h.tg.fail("refundStarPayment", status=502)
        assert await reply(h, BOSS, "/refund stxQUIET") == (
            "Telegram did not answer, so the refund may or may not have gone through. "
            "Send the same /refund again: it is safe to repeat."
        )
        assert await status(h, "stxQUIET") is PaymentStatus.REFUNDING
        assert (await reply(h, BOSS, "/refund stxQUIET")).startswith("Refunded 250 ⭐")
        assert (await h.user(ANN.id)).level is Level.USER


async def test_a_refund_made_elsewhere_takes_the_days_back(tmp_path: Path, clock: ManualClock) -> None:
    async with admin_harness(tmp_path, clock) as h:
        await h.say(ANN, "/start")
        await pay(h, ANN, "stxONE")
        await pay(h, ANN, "stxTWO")
        assert (await h.user(ANN.id)).level_until == clock.now() + timedelta(days=60)
        await reply(h, BOSS, "/ban @ann")  # a ban does not stop the bookkeeping
        mark = h.tg.mark()
        await h.push(h.tg.refunded_payment(ANN, PAYLOAD, 250, "stxTWO"))
        await h.push(h.tg.refunded_payment(ANN, PAYLOAD, 250, "stxTWO"))  # delivered twice: taken back once
        assert (await h.user(ANN.id)).level_until == clock.now() + timedelta(days=30)
        assert await status(h, "stxTWO") is PaymentStatus.REFUNDED
        assert h.tg.calls_of("sendMessage", since=mark, chat_id=ANN.id) == []  # Telegram itself tells them
        assert await reply(h, BOSS, "/refund stxTWO") == "That payment was already refunded."


async def test_a_refund_by_the_bot_followed_by_telegrams_message_takes_the_days_back_once(
    tmp_path: Path, clock: ManualClock
) -> None:
    async with admin_harness(tmp_path, clock) as h:
        await h.say(ANN, "/start")
        await pay(h, ANN, "stxONE")
        await pay(h, ANN, "stxTWO")
        assert (await reply(h, BOSS, "/refund stxTWO")).startswith("Refunded 250 ⭐")
        await h.push(h.tg.refunded_payment(ANN, PAYLOAD, 250, "stxTWO"))
        assert (await h.user(ANN.id)).level_until == clock.now() + timedelta(days=30)
