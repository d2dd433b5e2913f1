"""Elapsed time for latency figures: one definition so every log line and row measures the same way."""

from __future__ import annotations

import time


def elapsed_ms(started: float) -> int:
    """Whole milliseconds since `started`, a `time.monotonic()` reading (wall-clock steps do not count)."""
    return int((time.monotonic() - started) * 1000)
