"""The caption under a result: who made it, with which seed and size, what the model ignored, the
prompt (escaped, cut to fit 1024 characters) and what is left today. An album carries it once, on
its first image."""

from __future__ import annotations

import html
from collections.abc import Callable, Hashable, Sequence

from aiogram.utils.i18n import gettext as _

from bot.catalog import MODELS
from bot.providers.base import Option
from bot.services.generation import GeneratedImage, GenerationResult
from bot.texts import CAPTION_LIMIT, fit_html, model_title


def option_name(option: Option) -> str:
    names = {
        Option.ASPECT_RATIO: _("aspect ratio"),
        Option.SEED: _("seed"),
        Option.NEGATIVE_PROMPT: _("negative prompt"),
    }
    return names[option]


def result_caption(
    result: GenerationResult,
    images: Sequence[GeneratedImage],
    prompt: str,
    left: int | None,
    limit: int,
    *,
    helped: bool = False,
) -> str:
    """One caption for `images` (one image, or an album's): each fact said once. `helped`: `prompt`
    is prompt help's rewrite of the user's words, and the caption says so."""
    head = ""
    for image in _distinct(images, lambda i: (i.step, i.model)):
        made_by = model_title(image.step)
        upstream = image.model.rsplit("/", 1)[-1]
        head += f"{MODELS[image.step].emoji} <b>{html.escape(made_by)}</b> <i>({html.escape(upstream)})</i>\n"
    for image in _distinct(images, lambda i: i.step):
        made_by = html.escape(model_title(image.step))
        if image.step != result.requested:
            requested = html.escape(model_title(result.requested))
            head += (
                _("↪️ {requested} was unavailable, so {made_by} made this one.").format(
                    requested=requested, made_by=made_by
                )
                + "\n"
            )
        if image.prompt_shortened:
            head += (
                _("✂️ Your description was too long for {made_by}: it got a shortened one.").format(made_by=made_by)
                + "\n"
            )
        if image.ignored:
            ignored = ", ".join(option_name(o) for o in Option if o in image.ignored)
            head += _("🙈 {model} ignores: {options}").format(model=made_by, options=ignored) + "\n"
    facts = _facts(images)
    if facts:
        head += facts + "\n"
    if helped:
        head += _("✨ Prompt help rewrote your description:") + "\n"
    if left is None:
        tail = "\n" + _("Images left today: unlimited")
    else:
        tail = "\n" + _("Images left today: {left} of {limit}").format(left=left, limit=limit)
    return fit_html(head, prompt, tail, CAPTION_LIMIT, wrap="📝 {}")


def _facts(images: Sequence[GeneratedImage]) -> str:
    """ "🌱 Seed 42 · 📐 1024×576": what a re-run needs to reproduce the images."""
    seeds = [image.seed for image in images if image.seed is not None]
    sizes = list(dict.fromkeys(f"{image.width}×{image.height}" for image in images if image.width and image.height))
    parts = []
    if len(seeds) == 1:
        parts.append(_("🌱 Seed {seed}").format(seed=seeds[0]))
    elif seeds:
        parts.append(_("🌱 Seeds {seeds}").format(seeds=", ".join(str(seed) for seed in seeds)))
    if sizes:
        parts.append("📐 " + ", ".join(sizes))
    return " · ".join(parts)


def _distinct(images: Sequence[GeneratedImage], key: Callable[[GeneratedImage], Hashable]) -> list[GeneratedImage]:
    seen: set[Hashable] = set()
    out = []
    for image in images:
        k = key(image)
        if k not in seen:
            seen.add(k)
            out.append(image)
    return out
