"""`python -m bot generate`: the same generation service, without Telegram (seed 004's CLI)."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from bot.app import build_services
from bot.catalog import MODELS, ModelId
from bot.config import Settings
from bot.levels import Level
from bot.providers.base import ImageOptions
from bot.services.generation import GenerationFailed, GenerationRequest
from bot.services.unmetered import record_unmetered

EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}


def parse_size(text: str) -> tuple[int, int]:
    left, sep, right = text.lower().partition("x")
    if not sep or not left.isdigit() or not right.isdigit():
        raise ValueError(f"size must look like 1024x768, not {text!r}")
    return int(left), int(right)


def output_paths(output: str | None, count: int, extension: str, now: datetime) -> list[Path]:
    if output is None:
        base = Path("generated") / f"image-{now:%Y%m%d-%H%M%S}"
        suffix = f".{extension}"
    else:
        path = Path(output)
        base, suffix = path.with_suffix(""), path.suffix or f".{extension}"
        if count == 1:
            return [base.with_suffix(suffix)]
    if count == 1 and output is None:
        return [base.with_suffix(suffix)]
    return [base.parent / f"{base.name}_{i}{suffix}" for i in range(1, count + 1)]


async def generate_command(settings: Settings, args: argparse.Namespace) -> int:
    try:
        model = ModelId(args.model)
        width, height = parse_size(args.size) if args.size else (None, None)
    except ValueError as exc:
        known = ", ".join(m.value for m in MODELS)
        print(f"error: {exc if args.size else f'unknown model {args.model!r} (known: {known})'}", file=sys.stderr)
        return 2
    options = ImageOptions(
        width=width,
        height=height,
        aspect_ratio=args.aspect,
        count=args.count,
        seed=args.seed,
        negative_prompt=args.negative,
    )
    services = await build_services(settings)
    try:
        # The operator runs the CLI: every model is open to them.
        request = GenerationRequest(args.prompt, model, Level.ADMIN, options)
        outcome = await services.generation.generate_checked(request)
        await record_unmetered(
            services.sessions, services.clock, prompt=args.prompt, model=model, outcome=outcome, source="cli"
        )
    finally:
        await services.aclose()

    for attempt in outcome.attempts:
        status = f" HTTP {attempt.status}" if attempt.status else ""
        print(f"  tried {attempt.provider}/{attempt.model}: {attempt.outcome}{status} ({attempt.latency_ms} ms)")
    if isinstance(outcome, GenerationFailed):
        detail = f": {outcome.detail}" if outcome.detail else ""
        if outcome.refusal is not None:
            detail = f" by {outcome.refusal.provider}: {outcome.refusal.detail}"
        print(f"error: no image ({outcome.reason.value}{detail})", file=sys.stderr)
        return 1
    extension = EXTENSIONS.get(outcome.first.mime_type, "png")
    paths = output_paths(args.output, len(outcome.images), extension, services.clock.now())
    for path, image in zip(paths, outcome.images, strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(image.data)
        via = f"{MODELS[image.step].title} via {image.provider} ({image.model})"
        print(f"saved {path} — {via}")
    return 0
