"""`python -m bot doctor` reports PROMPT_MODEL and VISION_MODEL in the router errors' vocabulary."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.__main__ import _parser
from bot.doctor import doctor_command
from tests.conftest import make_settings
from tests.fakes.providers import FakeHub, FakePollinations, FakeReplicate

PROMPT = "fake-org/prompt-writer"
VISION = "fake-org/vision-7b"


@pytest.mark.parametrize(
    ("prompt_status", "vision_status", "prompt_word", "vision_word"),
    [
        (None, None, "ok", "ok"),
        (401, 403, "key: HF_TOKEN was refused", "gated: the model is gated"),
        (404, 429, "model: no such model", "busy: rate limit or credits"),
        (503, 500, "loading: the model is loading", "unavailable: the router is unreachable"),
    ],
)
async def test_doctor_names_each_router_problem(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    prompt_status: int | None,
    vision_status: int | None,
    prompt_word: str,
    vision_word: str,
) -> None:
    async with FakeHub() as hub, FakeReplicate() as router, FakePollinations() as pol:
        if prompt_status is not None:
            router.chat.fail(prompt_status, model=PROMPT)
        if vision_status is not None:
            router.chat.fail(vision_status, model=VISION)
        settings = make_settings(
            f"sqlite+aiosqlite:///{tmp_path / 'doc.db'}",
            HF_TOKEN="hf_doctor_token",
            HF_ENDPOINT=hub.url,
            HF_ROUTER_URL=router.url,
            REPLICATE_BASE_URL=router.url,
            POLLINATIONS_BASE_URL=pol.url,
            HF_TIMEOUT=3,
            PROMPT_MODEL=PROMPT,
            VISION_MODEL=VISION,
            PROMPT_TIMEOUT=3,
            VISION_TIMEOUT=3,
        )
        assert await doctor_command(settings, _parser().parse_args(["doctor"])) == 0
    out = capsys.readouterr().out.splitlines()
    prompt_line = next(line for line in out if "Prompt help" in line)
    vision_line = next(line for line in out if "Describe" in line)
    assert PROMPT in prompt_line and prompt_word in prompt_line
    assert VISION in vision_line and vision_word in vision_line
    assert prompt_line.startswith("OK" if prompt_status is None else "FAIL")
    assert "hf_doctor_token" not in "\n".join(out)


async def test_doctor_without_a_token_says_what_to_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async with FakePollinations() as pol:
        settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'doc.db'}", POLLINATIONS_BASE_URL=pol.url)
        await doctor_command(settings, _parser().parse_args(["doctor"]))
    out = capsys.readouterr().out
    assert "FAIL Prompt help" in out and "not_configured: set HF_TOKEN" in out
