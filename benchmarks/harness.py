"""Timing, memory and reporting helpers for the benchmark suite (no project imports here).

Latency is timed with tracing off; memory is a separate, shorter pass with tracemalloc on, because
tracemalloc slows every allocation down and would distort the latency numbers.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import statistics
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

Op = Callable[[], Awaitable[Any]]


@dataclass
class Result:
    name: str
    samples_ms: list[float] = field(default_factory=list)
    wall_s: float = 0.0  # wall time of the timed pass
    ops: int = 0  # operations completed in `wall_s` (for throughput)
    peak_kib: float | None = None  # highest transient Python-heap growth during one operation
    retained_b_per_op: float | None = None  # Python-heap growth left behind, per operation
    memory_ops: int = 0
    note: str = ""
    skipped: str | None = None

    @property
    def iterations(self) -> int:
        return len(self.samples_ms)

    @property
    def mean_ms(self) -> float:
        return statistics.fmean(self.samples_ms) if self.samples_ms else math.nan

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms) if self.samples_ms else math.nan

    @property
    def p95_ms(self) -> float:
        """Nearest-rank 95th percentile."""
        if not self.samples_ms:
            return math.nan
        ordered = sorted(self.samples_ms)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]

    @property
    def throughput(self) -> float:
        return self.ops / self.wall_s if self.wall_s > 0 else math.nan

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("samples_ms")
        data.update(
            iterations=self.iterations,
            mean_ms=_round(self.mean_ms),
            median_ms=_round(self.median_ms),
            p95_ms=_round(self.p95_ms),
            min_ms=_round(min(self.samples_ms)) if self.samples_ms else None,
            max_ms=_round(max(self.samples_ms)) if self.samples_ms else None,
            throughput_per_s=_round(self.throughput),
            wall_s=_round(self.wall_s),
        )
        return data


def _round(value: float | None, digits: int = 4) -> float | None:
    if value is None or math.isnan(value):
        return None
    return round(value, digits)


async def time_sequential(result: Result, op: Op, iterations: int, *, warmup: int, max_seconds: float) -> None:
    """Run `op` one after another; stop early (and say so) when `max_seconds` is used up."""
    for _ in range(warmup):
        await op()
    started = time.perf_counter()
    for _ in range(iterations):
        t0 = time.perf_counter_ns()
        await op()
        result.samples_ms.append((time.perf_counter_ns() - t0) / 1e6)
        if time.perf_counter() - started > max_seconds:
            break
    result.wall_s = time.perf_counter() - started
    result.ops = result.iterations
    _note_cut(result, iterations)


async def time_concurrent(
    result: Result, make_op: Callable[[int], Op], width: int, batches: int, *, warmup: int, max_seconds: float
) -> None:
    """`batches` rounds of `width` operations started together (asyncio.gather); each one timed on its own,
    from the moment the batch starts to the moment it finishes (so waiting for a lock or a pooled
    connection counts). Throughput is operations completed per second of wall time."""

    async def timed(op: Op, t0: int) -> None:
        await op()
        result.samples_ms.append((time.perf_counter_ns() - t0) / 1e6)

    for _ in range(warmup):
        await asyncio.gather(*(make_op(i)() for i in range(width)))
    started = time.perf_counter()
    done = 0
    for _ in range(batches):
        t0 = time.perf_counter_ns()
        await asyncio.gather(*(timed(make_op(i), t0) for i in range(width)))
        done += 1
        if time.perf_counter() - started > max_seconds:
            break
    result.wall_s = time.perf_counter() - started
    result.ops = result.iterations
    if done < batches:
        result.note = _join(result.note, f"time cap: {done} of {batches} batches")


async def measure_memory(result: Result, op: Op, iterations: int, *, settle: Callable[[], None] | None = None) -> None:
    """Peak: the largest rise of the traced Python heap above its level just before one operation.
    Retained: heap growth over all `iterations` (after gc) divided by `iterations`.

    Everything that exists before the pass is frozen (gc.freeze), so the closing gc.collect() looks
    only at objects made during the pass and costs milliseconds, not a full collection. `settle`
    empties known bounded caches before both measurements, so they do not read as growth.
    """
    if iterations <= 0:
        return
    if settle is not None:
        settle()
    gc.freeze()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        peak = 0
        for _ in range(iterations):
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            await op()
            peak = max(peak, tracemalloc.get_traced_memory()[1] - before)
        if settle is not None:
            settle()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
        gc.unfreeze()
    result.peak_kib = peak / 1024
    result.retained_b_per_op = (after - base) / iterations
    result.memory_ops = iterations


def _note_cut(result: Result, planned: int) -> None:
    if result.iterations < planned:
        result.note = _join(result.note, f"time cap: {result.iterations} of {planned}")


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


# -- reporting --------------------------------------------------------------------------------

COLUMNS = ("benchmark", "iters", "mean ms", "median ms", "p95 ms", "ops/s", "peak KiB", "kept B/op")


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


def rows(results: list[Result]) -> list[tuple[str, ...]]:
    out = []
    for r in results:
        if r.skipped:
            status = "FAILED" if r.skipped.startswith("FAILED") else "skipped"
            out.append((r.name, status, "", "", "", "", "", ""))
            continue
        out.append(
            (
                r.name,
                str(r.iterations),
                _fmt(r.mean_ms, 3),
                _fmt(r.median_ms, 3),
                _fmt(r.p95_ms, 3),
                _fmt(r.throughput, 0),
                _fmt(r.peak_kib, 1),
                _fmt(r.retained_b_per_op, 0),
            )
        )
    return out


def table(results: list[Result]) -> str:
    body = rows(results)
    widths = [max(len(COLUMNS[i]), *(len(row[i]) for row in body)) for i in range(len(COLUMNS))]

    def line(cells: tuple[str, ...]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(COLUMNS), sep, *(line(row) for row in body)])


def notes(results: list[Result]) -> list[str]:
    out = []
    for r in results:
        if r.skipped:
            out.append(f"{r.name}: skipped: {r.skipped}")
        elif r.note:
            out.append(f"{r.name}: {r.note}")
    return out


def write_json(path: Path, meta: dict[str, Any], results: list[Result]) -> None:
    payload = {"meta": meta, "results": [r.as_dict() for r in results]}
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
