"""`python -m bot doctor`: does each configured key reach each model? (seed 001's key-check script)

It makes one small real generation per model, because access problems (a key without FLUX.1-dev
access, a spent balance) only show at generation time.
"""

from __future__ import annotations

import argparse
import sys

from bot.app import build_providers, build_router_chat
from bot.assist.errors import RouterProblem
from bot.assist.status import model_status, status_line
from bot.catalog import CHAIN_ORDER, MODELS, ModelId
from bot.config import Settings
from bot.providers.base import ErrorKind, ImageOptions, ProviderError, provider_for

KEY_HINTS = {
    ModelId.GEMINI_FLASH: "set GEMINI_API_KEY (or GOOGLE_API_KEY)",
    ModelId.FLUX_DEV: "set HF_TOKEN (or HUGGINGFACE_API_KEY / HF_API_KEY)",
    ModelId.FLUX_PRO: "set REPLICATE_API_TOKEN (direct Replicate) or HF_TOKEN",
    ModelId.POLLINATIONS: "no key needed",
}

ADVICE = {
    ErrorKind.AUTH: "the key was refused: check it is current and has inference permissions",
    ErrorKind.NO_ACCESS: "the key works but has no access to this model",
    ErrorKind.RATE_LIMITED: "rate limit or credits exhausted: wait, or top up the account",
    ErrorKind.BAD_REQUEST: "the service refused the request: check GEMINI_IMAGE_MODEL / the base URL",
    ErrorKind.UNAVAILABLE: "the service is unreachable or failing: check the base URL / proxy, or try later",
    ErrorKind.TIMEOUT: "no answer in time: raise the provider timeout or try later",
    ErrorKind.BAD_OUTPUT: "the answer was not an image",
    ErrorKind.TOO_LARGE: "the answer was over PROVIDER_MAX_BYTES or the pixel cap",
}


async def check_models(settings: Settings, models: list[ModelId]) -> list[tuple[ModelId, bool, str]]:
    providers = build_providers(settings)
    results: list[tuple[ModelId, bool, str]] = []
    try:
        for model in models:
            provider = provider_for(providers, model)
            if provider is None or not provider.available(model):
                results.append((model, False, f"not configured: {KEY_HINTS[model]}"))
                continue
            try:
                image = await provider.generate(model, "a small red apple on a table", ImageOptions(512, 512))
            except ProviderError as exc:
                status = f" (HTTP {exc.status})" if exc.status else ""
                results.append((model, False, f"{exc.kind.value}{status}: {ADVICE.get(exc.kind, '')}"))
                continue
            note = f"ok via {image.provider} ({image.model}, {len(image.data) // 1024} KB)"
            if model is ModelId.FLUX_DEV and "schnell" in image.model.lower():
                note += "; the key has no FLUX.1-dev access, so FLUX Dev requests are served by FLUX.1-schnell"
            results.append((model, True, note))
    finally:
        for provider in providers:
            await provider.aclose()
    return results


async def check_router_models(settings: Settings) -> list[tuple[str, str, RouterProblem | None]]:
    """PROMPT_MODEL and VISION_MODEL on the HF router, in the router errors' vocabulary (bot/assist/errors.py)."""
    chat = build_router_chat(settings)
    checks = (
        ("Prompt help", settings.prompt_model, settings.prompt_timeout),
        ("Describe", settings.vision_model, settings.vision_timeout),
    )
    return [(label, model, await model_status(chat, model, seconds)) for label, model, seconds in checks]


async def doctor_command(settings: Settings, args: argparse.Namespace) -> int:
    try:
        models = [ModelId(m) for m in args.model] if args.model else list(CHAIN_ORDER)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    results = await check_models(settings, models)
    for model, ok, note in results:
        print(f"{'OK  ' if ok else 'FAIL'} {MODELS[model].title:<18} {note}")
    for label, router_model, problem in await check_router_models(settings):
        print(f"{'OK  ' if problem is None else 'FAIL'} {label:<18} {router_model}: {status_line(problem)}")
    working = [m for m, ok, _ in results if ok]
    if not working:
        print("Recommendation: no provider works; Pollinations needs no key, so check network access first.")
    elif ModelId.GEMINI_FLASH not in working and ModelId.GEMINI_FLASH in models:
        print(
            "Recommendation: users' default model is Gemini Flash; "
            f"requests will fall back to {MODELS[working[0]].title}."
        )
    else:
        print("Recommendation: the fallback chain has a working model.")
    return 0 if working else 1
