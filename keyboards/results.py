"""The buttons under a delivered result. Callback data names the generation, never the prompt: it
fits Telegram's 64 bytes and works after a restart and on any instance, since the row holds the rest."""

from __future__ import annotations

from enum import StrEnum

from aiogram.filters.callback_data import CallbackData


class ResultAction(StrEnum):
    REGENERATE = "re"  # same prompt and options, new seed
    OTHER_MODEL = "om"  # the picker, then the same prompt
    ORIGINAL = "or"  # the untouched file as a document
    UPSCALE = "up"  # ×2 through an upscaler
    EDIT = "ed"  # asks for an instruction
    ORIGINAL_PROMPT = "op"  # prompt help rewrote the prompt: run the user's own words instead


class ResultButton(CallbackData, prefix="res"):
    action: ResultAction
    generation_id: int
