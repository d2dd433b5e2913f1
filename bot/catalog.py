"""The product's models: who may use them, what they are called, and the fallback order."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.levels import Level


class ModelId(StrEnum):
    """Product models. The first three are pickable; POLLINATIONS is the keyless last resort.
    A product notion, not a provider's: keyboards and texts name models without the provider package."""

    GEMINI_FLASH = "gemini-flash"
    FLUX_DEV = "flux-dev"
    FLUX_PRO = "flux-pro"
    POLLINATIONS = "pollinations"


@dataclass(frozen=True, slots=True)
class ModelSpec:
    id: ModelId
    title: str
    emoji: str
    min_level: Level
    provider: str
    pickable: bool = True


MODELS: dict[ModelId, ModelSpec] = {
    spec.id: spec
    for spec in (
        ModelSpec(ModelId.GEMINI_FLASH, "Gemini Flash", "✨", Level.USER, "gemini"),
        ModelSpec(ModelId.FLUX_DEV, "FLUX Dev", "🎨", Level.USER, "hf-replicate"),
        ModelSpec(ModelId.FLUX_PRO, "FLUX Pro", "🚀", Level.SUBSCRIBER, "hf-replicate"),
        ModelSpec(ModelId.POLLINATIONS, "Pollinations FLUX", "🌸", Level.USER, "pollinations", pickable=False),
    )
}

# Gemini → HF+Replicate (Dev before the dearer Pro) → Pollinations. The chosen model goes first.
CHAIN_ORDER: tuple[ModelId, ...] = (ModelId.GEMINI_FLASH, ModelId.FLUX_DEV, ModelId.FLUX_PRO, ModelId.POLLINATIONS)

DEFAULT_MODEL = ModelId.GEMINI_FLASH


def pickable_models() -> list[ModelSpec]:
    return [spec for spec in MODELS.values() if spec.pickable]


def chain_for(requested: ModelId, level: Level) -> list[ModelId]:
    """The requested model, then the rest in chain order, never above the user's level."""
    order = [requested, *(m for m in CHAIN_ORDER if m != requested)]
    return [m for m in order if level.allows(MODELS[m].min_level)]
