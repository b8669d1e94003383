"""History queries: which series over which range, at what resolution.

The request, the store reads and the overlays live in core
(core.model.analytics, core.services.analytics) so the History chart, its CSV
export, ``smartiot export`` and ``POST /analytics/query`` read the same data
through the same use case. Aggregation happens in the store (SQL on the local
backend, Timestream's ``bin()`` on AWS): only about one bucket per pixel
column ever leaves the database.
"""

from __future__ import annotations

from datetime import timedelta

from core.model.analytics import AlertMark, HistoryRequest, ThresholdLine
from core.services.analytics import QUERY_THREADS, alert_marks, load_series, threshold_lines

# (label, span) for the range picker; "Custom…" is added by the widget.
RANGE_PRESETS: tuple[tuple[str, timedelta], ...] = (
    ("Last 15 minutes", timedelta(minutes=15)),
    ("Last hour", timedelta(hours=1)),
    ("Last 6 hours", timedelta(hours=6)),
    ("Last day", timedelta(days=1)),
    ("Last week", timedelta(days=7)),
)

# The store read without a role or scope, for benchmarks and tests of the
# store's bucketing; front ends call context.api.analytics.history.
load_history = load_series

__all__ = ["QUERY_THREADS", "RANGE_PRESETS", "AlertMark", "HistoryRequest", "ThresholdLine",
           "alert_marks", "load_history", "threshold_lines"]
