"""Read Prometheus exposition text back into numbers, so tests assert values, not substrings."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Key = tuple[str, frozenset[tuple[str, str]]]


def samples(text: str | bytes) -> dict[Key, float]:
    """Every sample by (sample name, labels)."""
    if isinstance(text, bytes):
        text = text.decode()
    out: dict[Key, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(parsed: dict[Key, float], name: str, **labels: str) -> float | None:
    return parsed.get((name, frozenset(labels.items())))
