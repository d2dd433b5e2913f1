"""The /stats chart: generations per day by provider, with failure and fallback rates.

matplotlib is imported only here, inside the function, when an admin asks: start-up stays fast and a
bot nobody asks for charts never loads it. The object API (Figure + the Agg canvas) keeps no global
pyplot state, so the drawing can run in a worker thread without blocking the event loop.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from bot.services.reports import DayStats


@dataclass(frozen=True, slots=True)
class ChartLabels:
    """Texts on the chart, in the admin's language (the caller translates them)."""

    title: str
    images: str  # left axis
    rates: str  # right axis
    failures: str
    fallbacks: str


def stats_chart_png(days: list[DayStats], labels: ChartLabels) -> bytes:
    """A PNG: stacked bars of delivered images per provider per day, failure and fallback rates as lines."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    figure = Figure(figsize=(9, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    x = list(range(len(days)))
    providers = sorted({name for day in days for name in day.by_provider})
    bottom = [0] * len(days)
    for provider in providers:
        heights = [day.by_provider.get(provider, 0) for day in days]
        axes.bar(x, heights, bottom=bottom, label=provider, width=0.7)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    axes.set_ylabel(labels.images)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xticks(x, [f"{day.day:%d.%m}" for day in days], rotation=45, fontsize=8)
    rates = axes.twinx()
    rates.plot(x, [day.failure_rate for day in days], color="tab:red", marker="o", label=labels.failures)
    rates.plot(x, [day.fallback_rate for day in days], color="tab:purple", marker="s", label=labels.fallbacks)
    rates.set_ylim(0, 1.05)
    rates.yaxis.set_major_formatter(PercentFormatter(1.0))
    rates.set_ylabel(labels.rates)
    handles, names = axes.get_legend_handles_labels()
    more_handles, more_names = rates.get_legend_handles_labels()
    axes.legend(handles + more_handles, names + more_names, loc="upper left", fontsize=8)
    axes.set_title(labels.title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
