"""Part of the catalogue: the style presets and the aspect ratios a user may choose.

A style is a short English suffix added to the prompt (image models read English best); only its
name is shown to users, translated. Ids are stored in the database and typed in `--style`: keep them.
"""

from __future__ import annotations

from dataclasses import dataclass


def N_(msgid: str) -> str:
    """Marks a catalogue entry for extraction (bot.i18n has one too, but this module knows no aiogram)."""
    return msgid


ASPECT_RATIOS: tuple[str, ...] = ("1:1", "3:2", "2:3", "4:3", "3:4", "16:9", "9:16")
MAX_IMAGES = 4
SEED_MAX = 2**31 - 1  # Replicate, Pollinations and HF all take a 32-bit signed seed
NEGATIVE_MAX_CHARS = 300


@dataclass(frozen=True, slots=True)
class Style:
    id: str
    suffix: str  # appended to the prompt, in English


STYLES: dict[str, Style] = {
    style.id: style
    for style in (
        Style("photo", "photorealistic photograph, natural light, sharp focus, detailed"),
        Style("anime", "anime style illustration, clean line art, vibrant cel shading"),
        Style("cinematic", "cinematic film still, dramatic lighting, shallow depth of field, wide shot"),
        Style("watercolor", "watercolor painting, soft washes of colour, paper texture"),
        Style("3d", "3D render, octane render, soft global illumination, high detail"),
    )
}

NO_STYLE = "none"
# Catalogue entries (msgids): translated where shown, by bot.texts.style_title.
STYLE_TITLES: dict[str, str] = {
    NO_STYLE: N_("No style"),
    "photo": N_("Photo"),
    "anime": N_("Anime"),
    "cinematic": N_("Cinematic"),
    "watercolor": N_("Watercolor"),
    "3d": N_("3D"),
}


def styled_prompt(prompt: str, style_id: str | None) -> str:
    """The prompt a provider receives: the user's words, then the style's suffix."""
    style = STYLES.get(style_id or "")
    if style is None:
        return prompt
    return f"{prompt.rstrip().rstrip('.')}. {style.suffix}"
