"""The Images API's request parsing: what the OpenAPI document allows, and nothing else."""

from __future__ import annotations

import pytest

from bot.web.openai_errors import ApiError
from bot.web.openai_requests import parse_generation


@pytest.mark.parametrize("body", [{"prompt": "a cat"}, {"prompt": "a cat", "response_format": None}])
def test_response_format_defaults_to_url(body: dict[str, object]) -> None:
    assert parse_generation(body).response_format == "url"


@pytest.mark.parametrize("value", ["", "png", 1])
def test_a_response_format_outside_the_enum_is_refused(value: object) -> None:
    with pytest.raises(ApiError):
        parse_generation({"prompt": "a cat", "response_format": value})
