"""Reading OpenAI Images requests: the JSON of /v1/images/generations and the multipart form of
/v1/images/edits, checked field by field so a bad one is a 400 naming its `param`."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from PIL import Image, UnidentifiedImageError

from bot.catalog import ModelId
from bot.providers.limits import MAX_PIXELS
from bot.services.generation import MAX_COUNT, MAX_PROMPT_CHARS
from bot.web.openai_errors import ApiError, bad_request

RESPONSE_FORMATS = ("url", "b64_json")
# OpenAI's sizes (DALL·E 2 and 3, gpt-image-1); each side within what every model here accepts.
SIZES = ("256x256", "512x512", "1024x1024", "1024x1536", "1536x1024", "1024x1792", "1792x1024")
MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # an edit's photo
MAX_FIELD_BYTES = 64 * 1024  # any other form field
UPLOAD_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


@dataclass(frozen=True, slots=True)
class ImagesParams:
    prompt: str
    model: ModelId | None  # None: the user's chosen model
    count: int
    width: int | None
    height: int | None
    response_format: str


@dataclass(frozen=True, slots=True)
class Upload:
    data: bytes
    mime_type: str


def parse_generation(body: Any) -> ImagesParams:
    if not isinstance(body, dict):
        raise ApiError(bad_request("The request body must be a JSON object."))
    return _params(body)


def _params(fields: dict[str, Any]) -> ImagesParams:
    prompt = fields.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ApiError(bad_request("'prompt' is required and must be a non-empty string.", "prompt"))
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ApiError(bad_request(f"'prompt' is longer than {MAX_PROMPT_CHARS} characters.", "prompt"))
    if "\x00" in prompt or not _is_utf8(prompt):  # PostgreSQL text takes no NUL; a lone surrogate is no text
        raise ApiError(bad_request("'prompt' contains characters that are not text.", "prompt"))
    model = _model(fields.get("model"))
    count = _count(1 if fields.get("n") is None else fields["n"])
    width, height = _size(fields.get("size"))
    # Absent or null is the default; an empty string is not a format (multipart sends one for an empty field).
    response_format = "url" if fields.get("response_format") is None else fields["response_format"]
    if response_format not in RESPONSE_FORMATS:
        raise ApiError(bad_request("'response_format' must be 'url' or 'b64_json'.", "response_format"))
    user = fields.get("user")
    if user is not None and not isinstance(user, str):
        raise ApiError(bad_request("'user' must be a string.", "user"))
    return ImagesParams(prompt, model, count, width, height, response_format)


def _is_utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _model(value: Any) -> ModelId | None:
    if value is None:
        return None
    if isinstance(value, str) and value in ModelId.__members__.values():
        return ModelId(value)
    names = ", ".join(m.value for m in ModelId)
    raise ApiError(bad_request(f"Unknown model. Models: {names}.", "model", "model_not_found"))


def _count(value: Any) -> int:
    if isinstance(value, str) and value.isdigit():  # multipart fields arrive as text
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_COUNT:
        raise ApiError(bad_request(f"'n' must be an integer from 1 to {MAX_COUNT}.", "n"))
    return value


def _size(value: Any) -> tuple[int | None, int | None]:
    if value is None or value == "auto":
        return None, None
    if value not in SIZES:
        raise ApiError(bad_request(f"'size' must be one of: auto, {', '.join(SIZES)}.", "size"))
    width, _, height = value.partition("x")
    return int(width), int(height)


async def parse_edit(request: web.Request) -> tuple[ImagesParams, Upload]:
    """The multipart form, read part by part with a cap on each, so a huge upload is cut, not buffered."""
    if not request.content_type.startswith("multipart/"):
        raise ApiError(bad_request("Send the edit as multipart/form-data with 'image' and 'prompt'."))
    try:
        fields, upload = await _read_form(request)
    except (HttpProcessingError, ValueError, LookupError):  # a broken form: bad part headers, boundary, charset
        raise ApiError(bad_request("The multipart form could not be read.")) from None
    if upload is None:
        raise ApiError(bad_request("'image' is required: the photo to edit.", "image"))
    params = _params(fields)
    return params, _image(upload)


async def _read_form(request: web.Request) -> tuple[dict[str, Any], bytes | None]:
    reader = await request.multipart()
    fields: dict[str, Any] = {}
    upload: bytes | None = None
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            continue
        name = part.name or ""
        if name in ("image", "image[]"):
            if upload is None:  # OpenAI takes several for some models; an edit here works on the first
                upload = await _read_capped(part, MAX_UPLOAD_BYTES, "image")
            else:
                await part.release()
        elif name == "mask":
            await part.release()  # not supported: the prompt says what to change
        else:
            raw = await _read_capped(part, MAX_FIELD_BYTES, name or None)
            try:
                fields[name] = raw.decode()
            except UnicodeDecodeError:
                raise ApiError(bad_request("Form fields must be UTF-8 text.", name or None)) from None
    return fields, upload


async def _read_capped(part: BodyPartReader, cap: int, param: str | None) -> bytes:
    data = bytearray()
    while chunk := await part.read_chunk(64 * 1024):
        data.extend(chunk)
        if len(data) > cap:
            raise ApiError(bad_request(f"'{param}' is larger than {cap // (1024 * 1024) or 1} MB.", param))
    return bytes(data)


def _image(data: bytes) -> Upload:
    """A PNG, JPEG or WebP of at most MAX_PIXELS, checked from its header before it is decoded."""
    message = "'image' must be a PNG, JPEG or WebP image."
    try:
        with Image.open(io.BytesIO(data)) as img:
            mime = UPLOAD_TYPES.get(img.format or "")
            if mime is None:
                raise ApiError(bad_request(message, "image"))
            if img.width * img.height > MAX_PIXELS:
                raise ApiError(bad_request("'image' has too many pixels.", "image"))
            img.load()
    except ApiError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise ApiError(bad_request(message, "image")) from None
    return Upload(data, mime)
