"""A front end (WORKERS=0, jobs on the Redis queue) never imports a provider SDK, even configured."""

from __future__ import annotations

from pathlib import Path

from tests.test_sdk_preload import gemini_loaded_after_start_up


def test_a_front_end_never_loads_gemini(tmp_path: Path, scaled_env: dict[str, str]) -> None:
    assert not gemini_loaded_after_start_up({**scaled_env, "WORKERS": "0"}, tmp_path)
