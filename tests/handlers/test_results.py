"""The buttons under a result, through the real Dispatcher, the in-process workers and the fake Bot
API: stored file ids, Regenerate and Other model as new jobs under the same rules, Original as a file
(in depth in test_originals.py), refusal for someone else's image, and the keyboard after an album."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiogram.types import Update
from sqlalchemy import select

from bot.app import attach_worker, build_services, create_dispatcher
from bot.catalog import ModelId
from bot.i18n import create_i18n
from bot.levels import Level
from bot.providers.base import ImageOptions
from bot.telegram import create_bot
from keyboards.results import ResultAction, ResultButton, ResultModel
from models import Generation, GenerationImage
from tests.conftest import TOKEN, make_settings
from tests.fakes.telegram import Call, FakeUser
from tests.support import default_stubs, png

ANN = FakeUser(id=801, first_name="Ann")
BOB = FakeUser(id=802, first_name="Bob", language_code="ru")
BotFactory = Callable[..., Any]


def button(action: ResultAction, generation_id: int) -> str:
    return ResultButton(action=action, generation_id=generation_id).pack()


async def rows(b: Any, model: type[Any]) -> list[Any]:
    async with b.services.sessions() as session:
        return list((await session.execute(select(model).order_by(model.id))).scalars())


async def submit(b: Any, user: FakeUser, prompt: str, options: ImageOptions) -> int:
    """A job with options a typed prompt cannot set yet (per-prompt flags are another change)."""
    submitted = await b.services.jobs.submit(
        user_id=user.id, chat_id=user.id, level=Level.USER, prompt=prompt, model=ModelId.GEMINI_FLASH, options=options
    )
    assert submitted.generation_id is not None
    await b.services.queue.enqueue(submitted.generation_id)
    await b.services.queue.drained()
    return int(submitted.generation_id)


def answers(b: Any) -> list[Call]:
    return b.tg.calls_of("answerCallbackQuery", ok=True)


async def delivered(b: Any, user: FakeUser, prompt: str) -> tuple[int, Call]:
    await b.feed(b.tg.message(user, prompt))
    photo = b.tg.sent_photos(user.id)[-1]
    generation = (await rows(b, Generation))[-1]
    return generation.id, photo


async def test_a_result_carries_its_buttons_and_its_file_id_is_kept(make_bot: BotFactory) -> None:
    b = await make_bot()
    gid, photo = await delivered(b, ANN, "a red fox")
    assert photo.callback_datas == [
        button(ResultAction.REGENERATE, gid),
        button(ResultAction.OTHER_MODEL, gid),
        button(ResultAction.ORIGINAL, gid),
        button(ResultAction.EDIT, gid),  # no upscaler configured: no ⬆️
    ]
    [kept] = await rows(b, GenerationImage)
    largest = photo.result["photo"][-1]
    assert (kept.generation_id, kept.user_id, kept.position, kept.kind) == (gid, ANN.id, 0, "photo")
    assert (kept.file_id, kept.file_unique_id) == (largest["file_id"], largest["file_unique_id"])
    assert (kept.message_id, kept.chat_id, kept.width, kept.height) == (photo.result["message_id"], ANN.id, 32, 32)


async def test_regenerate_is_a_new_job_with_the_same_prompt_a_new_seed_and_its_parent(make_bot: BotFactory) -> None:
    b = await make_bot(DAILY_LIMIT_USER=5)
    await b.feed(b.tg.message(ANN, "a red fox"))
    # The first job asked for a fixed seed: Regenerate keeps the options but not the seed.
    gid = await submit(b, ANN, "a blue owl", ImageOptions(aspect_ratio="16:9", seed=42))
    photo = b.tg.sent_photos(ANN.id)[-1]

    await b.feed(b.tg.callback(ANN, button(ResultAction.REGENERATE, gid), message_id=photo.result["message_id"]))
    assert "new seed" in answers(b)[-1].params["text"]
    last = (await rows(b, Generation))[-1]
    assert (last.prompt, last.parent_id, last.model_requested, last.status) == (
        "a blue owl",
        gid,
        "gemini-flash",
        "delivered",
    )
    assert last.options == {"aspect_ratio": "16:9", "count": 1}
    _, prompt, options = b.stubs["gemini"].calls[-1]
    # No seed on the job: the service draws a fresh one (reported in the caption), never the old 42.
    assert (prompt, options.aspect_ratio) == ("a blue owl", "16:9")
    assert options.seed is not None and options.seed != 42
    assert len(b.tg.sent_photos(ANN.id)) == 3
    assert (await b.services.quota.status(ANN.id, Level.USER)).used == 3


async def test_regenerate_follows_the_daily_limit_like_a_prompt(make_bot: BotFactory) -> None:
    b = await make_bot(DAILY_LIMIT_USER=1)
    gid, _ = await delivered(b, ANN, "a red fox")
    await b.feed(b.tg.callback(ANN, button(ResultAction.REGENERATE, gid)))
    assert "You have used all 1 images for today" in b.tg.sent_texts(ANN.id)[-1]
    assert len(await rows(b, Generation)) == 1
    assert len(b.tg.sent_photos(ANN.id)) == 1


async def test_someone_elses_image_is_refused_politely(make_bot: BotFactory) -> None:
    b = await make_bot()
    gid, photo = await delivered(b, ANN, "a red fox")
    for action in (ResultAction.REGENERATE, ResultAction.OTHER_MODEL, ResultAction.ORIGINAL):
        # Bob presses a button under Ann's image (forwarded to him, say): a short alert, nothing else.
        await b.feed(b.tg.callback(BOB, button(action, gid), message_id=photo.result["message_id"]))
        answer = answers(b)[-1]
        assert answer.params["show_alert"] is True
        assert "чужому изображению" in answer.params["text"]  # in Bob's language
    await b.feed(b.tg.callback(BOB, ResultModel(generation_id=gid, model="flux-dev").pack()))
    assert "чужому изображению" in answers(b)[-1].params["text"]
    assert len(await rows(b, Generation)) == 1
    assert b.tg.calls_of("sendDocument") == [] and b.tg.sent_messages(BOB.id) == []
    assert b.stubs["hf"].calls == []


async def test_a_missing_or_forged_generation_is_answered_not_crashed(make_bot: BotFactory) -> None:
    b = await make_bot()
    await b.feed(b.tg.callback(ANN, button(ResultAction.ORIGINAL, 999)))
    assert "no longer available" in answers(b)[-1].params["text"]
    await b.feed(b.tg.callback(ANN, "res:re:not-a-number"))
    assert "outdated" in answers(b)[-1].params["text"]  # the fallback router: aiogram refused to parse it


async def test_other_model_shows_the_picker_then_runs_the_same_prompt_there(make_bot: BotFactory) -> None:
    b = await make_bot()
    gid, _ = await delivered(b, ANN, "a red fox")
    await b.feed(b.tg.callback(ANN, button(ResultAction.OTHER_MODEL, gid)))
    picker = b.tg.sent_messages(ANN.id)[-1]
    assert "same description" in picker.result["text"]
    assert ResultModel(generation_id=gid, model="flux-dev").pack() in picker.callback_datas
    assert any(b_["text"].startswith("🔒") for row in picker.reply_markup["inline_keyboard"] for b_ in row)  # type: ignore[index]

    # FLUX Pro is above a user's level: refused with an alert, nothing submitted.
    await b.feed(b.tg.callback(ANN, ResultModel(generation_id=gid, model="flux-pro").pack()))
    assert answers(b)[-1].params["show_alert"] is True and "🔒" in answers(b)[-1].params["text"]
    await b.feed(b.tg.callback(ANN, ResultModel(generation_id=gid, model="bogus").pack()))
    assert "does not exist" in answers(b)[-1].params["text"]
    assert len(await rows(b, Generation)) == 1

    await b.feed(b.tg.callback(ANN, ResultModel(generation_id=gid, model="flux-dev").pack(),
                               message_id=picker.result["message_id"]))  # fmt: skip
    last = (await rows(b, Generation))[-1]
    assert (last.model_requested, last.prompt, last.parent_id, last.status) == (
        "flux-dev",
        "a red fox",
        gid,
        "delivered",
    )
    assert [(m.value, p) for m, p, _ in b.stubs["hf"].calls] == [("flux-dev", "a red fox")]
    assert b.tg.message_state(ANN.id, picker.result["message_id"])["text"] == "Model: FLUX Dev"  # type: ignore[index]
    # The user's chosen model is untouched: their next typed prompt still goes to Gemini.
    assert (await b.services.users.get(ANN.id)).chosen_model.value == "gemini-flash"  # type: ignore[union-attr]


async def test_original_sends_the_kept_file_as_a_document_without_a_provider_call(make_bot: BotFactory) -> None:
    b = await make_bot()
    gid, _ = await delivered(b, ANN, "a red fox")
    calls = len(b.stubs["gemini"].calls)
    await b.feed(b.tg.callback(ANN, button(ResultAction.ORIGINAL, gid)))
    [document] = b.tg.calls_of("sendDocument", ok=True)
    assert document.files["document"] == png(b.stubs["gemini"].color)  # the provider's bytes, not Telegram's
    assert document.filenames["document"] == f"image-{gid}-1.png"
    assert len(b.stubs["gemini"].calls) == calls
    assert (await b.services.quota.status(ANN.id, Level.USER)).used == 1  # nothing charged


async def test_an_album_gets_its_buttons_in_a_message_after_it_and_original_sends_every_image(
    make_bot: BotFactory,
) -> None:
    b = await make_bot()
    await b.feed(b.tg.message(ANN, "/start"))
    gid = await submit(b, ANN, "two cats", ImageOptions(count=2))
    [album] = b.tg.calls_of("sendMediaGroup", ok=True, chat_id=ANN.id)  # one album: no keyboard on it
    assert len(album.result) == 2 and "reply_markup" not in album.params
    follow = b.tg.sent_messages(ANN.id)[-1]
    assert follow.result["message_id"] > album.result[-1]["message_id"]
    assert button(ResultAction.REGENERATE, gid) in follow.callback_datas
    kept = await rows(b, GenerationImage)
    assert [k.position for k in kept] == [0, 1]
    assert [k.message_id for k in kept] == [m["message_id"] for m in album.result]

    await b.feed(b.tg.callback(ANN, button(ResultAction.ORIGINAL, gid), message_id=follow.result["message_id"]))
    documents = b.tg.calls_of("sendDocument", ok=True)
    assert [d.filenames["document"] for d in documents] == [f"image-{gid}-1.png", f"image-{gid}-2.png"]


async def test_buttons_work_from_a_fresh_dispatcher_on_the_same_database(
    make_bot: BotFactory, db_url: str, clock: Any
) -> None:
    """Another instance (or this one after a restart) knows nothing but the database."""
    b = await make_bot()
    gid, _ = await delivered(b, ANN, "a red fox")
    stubs = default_stubs()
    services = await build_services(make_settings(db_url), clock, providers=list(stubs.values()))
    bot = create_bot(TOKEN, b.tg.url)
    try:
        i18n = create_i18n()
        dp = create_dispatcher(services, i18n)
        attach_worker(services, bot, i18n)

        async def press(action: ResultAction) -> None:
            update = {"update_id": 10_000 + len(b.tg.calls), **b.tg.callback(ANN, button(action, gid))}
            await dp.feed_update(bot, Update.model_validate(update, context={"bot": bot}))
            await services.queue.drained()

        await press(ResultAction.REGENERATE)
        assert [p for _, p, _ in stubs["gemini"].calls] == ["a red fox"]
        assert len(b.tg.sent_photos(ANN.id)) == 2
        await press(ResultAction.ORIGINAL)
        [document] = b.tg.calls_of("sendDocument", ok=True)
        assert document.files["document"] == png(b.stubs["gemini"].color)
    finally:
        await bot.session.close()
        await services.aclose()


async def test_the_buttons_speak_the_users_language(make_bot: BotFactory) -> None:
    b = await make_bot()
    gid, photo = await delivered(b, BOB, "лиса")
    assert [btn["text"] for btn in photo.buttons] == ["🔁 Ещё раз", "🔀 Другая модель", "📎 Оригинал", "✏️ Изменить"]
    await b.feed(b.tg.callback(BOB, button(ResultAction.OTHER_MODEL, gid)))
    assert b.tg.sent_texts(BOB.id)[-1] == "Выберите модель для того же описания:"
