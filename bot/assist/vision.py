"""Describe a photo with a vision model: OpenAI `image_url` content with a data URI, through the router."""

from __future__ import annotations

import base64

from .assistant import RouterAssistant

MAX_TOKENS = 500

# The user's language by locale; the model is asked to answer in it.
LANGUAGES = {"en": "English", "ru": "Russian"}


def instructions(language: str) -> str:
    return (
        f"Describe this image in {language} in a few sentences: the subject, the setting, colours, "
        "lighting and style, so that someone could paint it from your words. Describe only what is "
        "visible. Answer with the description only."
    )


class VisionDescriber(RouterAssistant):
    async def describe(self, image: bytes, mime_type: str, locale: str) -> str:
        """The description (in the locale's language); a RouterError when the model fails."""
        uri = f"data:{mime_type};base64,{base64.b64encode(image).decode('ascii')}"
        language = LANGUAGES.get(locale, LANGUAGES["en"])
        messages = [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": instructions(language)},
                    {"type": "image_url", "image_url": {"url": uri}},
                ],
            }
        ]
        return await self._chat.complete(self._model, messages, budget=self._timeout, max_tokens=MAX_TOKENS)
