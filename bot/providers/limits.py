"""Bounds on what a provider may hand back: bytes read off the wire, pixels decoded.

A provider is a stranger's server: a 200 MB body or a 420 KB PNG of 12000×12000 pixels (552 MB once
decoded) must cost a capped read and a refused header, not the process's memory. Bodies are streamed
and counted as they arrive; images are refused from their header before any pixel is decoded.
"""

from __future__ import annotations

import warnings

import httpx
from PIL import Image

DEFAULT_MAX_BYTES = 20 * 1024 * 1024  # PROVIDER_MAX_BYTES
MAX_PIXELS = 40_000_000  # about 40 MP: 6000×6000, far above any model's output

# Pillow warns between MAX_IMAGE_PIXELS and twice that and refuses only above: the warning is made an
# error here, once for the process (a per-call catch_warnings is not thread-safe, and decoding runs in
# threads), and `check_pixels` refuses the same range whatever the warnings filters say.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)


class TooLarge(Exception):
    """A body over the byte cap, or an image over the pixel cap; the message says which."""


def check_length(headers: httpx.Headers, cap: int) -> None:
    """Refuse before reading when the server announces more than `cap` bytes."""
    length = headers.get("content-length", "")
    if length.isdigit() and int(length) > cap:
        raise TooLarge(f"body of {int(length)} bytes is over the {cap}-byte cap")


async def read_capped(response: httpx.Response, cap: int) -> bytes:
    """The (decompressed) body of a streamed response, or TooLarge once it passes `cap` bytes."""
    check_length(response.headers, cap)
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > cap:
            raise TooLarge(f"body is over the {cap}-byte cap")
    return bytes(body)


def check_pixels(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise TooLarge(f"{width}x{height} image is over the {MAX_PIXELS}-pixel cap")


async def fetch_capped(client: httpx.AsyncClient, method: str, url: str, cap: int, **kwargs: object) -> httpx.Response:
    """`client.request`, but streamed and cut at `cap` bytes: the answer comes back already read."""
    async with client.stream(method, url, **kwargs) as response:  # type: ignore[arg-type]
        body = await read_capped(response, cap)
    # A fresh response holding the decoded body (no content-encoding left to apply to it).
    read = httpx.Response(
        response.status_code,
        headers={"content-type": response.headers.get("content-type", "application/octet-stream")},
        content=body,
        request=response.request,
    )
    return read
