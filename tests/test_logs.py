"""Secret masking reaches every handler (a library's own too), never raises into the caller, and
hides a key even when an excerpt cuts it in half."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from bot.catalog import ModelId
from bot.config import Settings
from bot.logs import SecretFilter, setup_logging
from bot.providers.base import ErrorKind, ImageOptions, ProviderError, excerpt
from bot.providers.pollinations import PollinationsProvider
from tests.conftest import TOKEN, make_settings
from tests.fakes.providers import FakePollinations

HF = "hf_live_secret_token_0042"
POLLINATIONS = "pk_SECRET_pollinations_key_123"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """setup_logging changes process-wide state: put every logger back as it was."""
    manager = logging.Logger.manager
    loggers = [logging.getLogger(), *(lg for lg in manager.loggerDict.values() if isinstance(lg, logging.Logger))]
    saved = [(lg, list(lg.handlers), lg.level, lg.propagate) for lg in loggers]
    filters = {id(h): list(h.filters) for lg in loggers for h in lg.handlers}
    handlers = {id(h): h for lg in loggers for h in lg.handlers}
    yield
    for lg, hs, level, propagate in saved:
        lg.handlers[:] = hs
        lg.setLevel(level)
        lg.propagate = propagate
    for key, handler in handlers.items():
        handler.filters[:] = filters[key]


def settings_with_keys(tmp_path: object) -> Settings:
    return make_settings(f"sqlite+aiosqlite:///{tmp_path}/x.db", HF_TOKEN=HF)


@pytest.mark.usefixtures("restore_logging")
def test_huggingface_hubs_own_handler_never_prints_a_token(
    tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from huggingface_hub.utils import logging as hf_logging

    library_output = io.StringIO()
    # What huggingface_hub does at import: its own stderr handler on its root logger.
    hf_logging.get_logger().addHandler(logging.StreamHandler(library_output))
    setup_logging(settings_with_keys(tmp_path))

    hf_logging.get_logger("huggingface_hub.inference._client").warning("token %s for bot%s", HF, TOKEN)

    printed = library_output.getvalue() + capsys.readouterr().err
    assert "token *** for bot***" in printed
    assert HF not in printed and TOKEN.split(":", 1)[1] not in printed
    assert printed.count("token *** for bot***") == 1  # once, through our handler: not twice


@pytest.mark.usefixtures("restore_logging")
def test_any_librarys_own_handler_is_masked_too(tmp_path: object) -> None:
    library_output = io.StringIO()
    library = logging.getLogger("some_library")
    library.addHandler(logging.StreamHandler(library_output))
    library.propagate = False
    setup_logging(settings_with_keys(tmp_path))
    library.error("failed with %s", HF)
    assert library_output.getvalue() == "failed with ***\n"


def test_a_malformed_log_call_does_not_raise_into_the_caller() -> None:
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.addFilter(SecretFilter([HF]))
    logger = logging.getLogger("test_logs.malformed")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("%s %s", HF)  # one argument for two placeholders: a library bug, not ours to crash on
        logger.warning("%d items", "many")
    finally:
        logger.removeHandler(handler)
    text = output.getvalue()
    assert HF not in text
    assert text.count("\n") == 2 and "***" in text and "many" in text


def test_an_exception_text_is_masked() -> None:
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.addFilter(SecretFilter([HF]))
    logger = logging.getLogger("test_logs.exception")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise RuntimeError(f"GET https://hub/api?token={HF}")
        except RuntimeError:
            logger.exception("call failed")
    finally:
        logger.removeHandler(handler)
    assert HF not in output.getvalue() and "token=***" in output.getvalue()


def test_an_excerpt_that_cuts_a_key_in_half_still_hides_it() -> None:
    body = "x" * 190 + POLLINATIONS + " more"
    cut = excerpt(body, 200, hide=[POLLINATIONS])
    assert POLLINATIONS[:6] not in cut and "***" in cut


async def test_a_provider_error_body_echoing_the_key_at_the_cut_hides_it() -> None:
    async with FakePollinations() as fake:
        # The key straddles the 200-character excerpt: truncating first would keep its first half.
        fake.behave("status", key="image", status=401, body="invalid key: " + "x" * 180 + POLLINATIONS)
        provider = PollinationsProvider(POLLINATIONS, fake.url, 5)
        try:
            with pytest.raises(ProviderError) as info:
                await provider.generate(ModelId.POLLINATIONS, "a fox", ImageOptions())
        finally:
            await provider.aclose()
    assert info.value.kind is ErrorKind.AUTH
    assert POLLINATIONS[:6] not in info.value.detail and "***" in info.value.detail


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("level, shown", [("INFO", False), ("DEBUG", True)])
def test_the_per_update_line_shows_only_at_debug_and_its_warnings_always(
    tmp_path: object, capsys: pytest.CaptureFixture[str], level: str, shown: bool
) -> None:
    """aiogram's own "Update id=… is handled" line (aiogram.loggers.event, as the Dispatcher logs it)."""
    from aiogram import loggers

    setup_logging(make_settings(f"sqlite+aiosqlite:///{tmp_path}/x.db", LOG_LEVEL=level))
    loggers.event.info("Update id=%s is %s. Duration %d ms by bot id=%d", 77, "handled", 3, 123456)
    loggers.event.warning("an aiogram warning")
    err = capsys.readouterr().err
    assert ("Update id=77 is handled" in err) is shown
    assert "an aiogram warning" in err
