"""A job waiting for a worker shows its place in line, edited as the line moves, in the user's language."""

from __future__ import annotations

from datetime import timedelta

from bot.catalog import ModelId
from bot.clock import ManualClock
from bot.db import SessionFactory
from bot.i18n import create_i18n
from bot.levels import Level
from bot.positions import LinePositions
from bot.services.jobs import GenerationJobs, JobView
from bot.services.quota import QuotaService
from bot.services.users import Profile, UserService
from bot.telegram import create_bot
from models import GenerationStatus
from tests.conftest import TOKEN, make_settings
from tests.fakes.telegram import FakeTelegram

LEASE = timedelta(seconds=60)


async def test_places_in_line_are_shown_once_each_and_follow_the_line(
    sessions: SessionFactory, clock: ManualClock
) -> None:
    settings = make_settings("sqlite+aiosqlite://")
    users = UserService(sessions, clock, frozenset())
    jobs = GenerationJobs(sessions, QuotaService(sessions, settings, clock), clock, settings)
    async with FakeTelegram() as tg:
        bot = create_bot(TOKEN, tg.url)
        try:
            ids = []
            for uid, lang in ((1, "en"), (2, "ru"), (3, "en")):
                await users.register(Profile(id=uid, first_name=f"U{uid}", language_code=lang))
                submitted = await jobs.submit(
                    user_id=uid, chat_id=uid, level=Level.USER, prompt="p", model=ModelId.FLUX_DEV, locale=lang
                )
                assert submitted.generation_id is not None
                status = await bot.send_message(uid, "🎨 Generating with FLUX Dev…")
                await jobs.set_status_message(submitted.generation_id, status.message_id)
                ids.append((uid, status.message_id))
            line = LinePositions(bot, jobs, create_i18n(), clock)

            assert await line.update() == 0  # just queued: most jobs start at once, so nothing is shown yet
            clock.advance(timedelta(seconds=5))
            assert await line.update() == 3
            shown = {uid: tg.message_state(uid, mid)["text"] for uid, mid in ids}  # type: ignore[index]
            assert shown[1] == "⏳ You are #1 in line for FLUX Dev."
            assert "#2" in shown[2] and "FLUX Dev" in shown[2] and "You are" not in shown[2]  # Russian
            assert shown[3].startswith("⏳ You are #3 in line")
            assert await line.update() == 0  # nothing moved: no edits

            first = await jobs.claim("w", LEASE)
            assert isinstance(first, JobView)
            await jobs.finish(first.id, "w", GenerationStatus.DELIVERED, None, delivered=1)
            assert await line.update() == 2
            assert tg.message_state(3, ids[2][1])["text"].startswith("⏳ You are #2 in line for FLUX Dev. About ")  # type: ignore[index]
        finally:
            await bot.session.close()
