"""``smartiot export``: the data behind a chart, from a terminal or a cron job.

    smartiot export --device pump-0001 --metric pressure --from -24h --bucket 1m
    smartiot export --device a --device b --metric temperature --from 2026-11-26T00:00Z \\
        --to 2026-11-27T00:00Z --format json --output temps.json

Same query and same file layout as the History chart's "Export CSV", so the
two never disagree. Exit codes: 0 written, 2 bad arguments (each message names
the argument, as argparse does), 1 the backend failed.
"""

from __future__ import annotations

import argparse
import re
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import IO

from core.context import AppContext
from core.errors import NotFound, ValidationError
from core.model.analytics import HistoryRequest
from core.text import plural
from plugins.analytics import export
from plugins.analytics.time_args import FORMS, TimeArgError, parse_duration_ms, parse_instant


class _BadArgument(Exception):
    def __init__(self, argument: str, problem: str) -> None:
        super().__init__(f"{argument}: {problem}")


def configure_export(parser: argparse.ArgumentParser) -> None:
    # argparse reads "-1h" as an unknown option, so `--from -1h` would fail with
    # "expected one argument"; relative times must count as values, like "-1".
    parser._negative_number_matcher = re.compile(r"^-\d+(\.\d+)?[a-z]*$")
    parser.add_argument("--device", action="append", required=True, metavar="ID",
                        help="device id; repeat for several devices")
    parser.add_argument("--metric", action="append", required=True, metavar="NAME",
                        help="metric name; repeat for several metrics")
    parser.add_argument("--from", dest="start", default="-1h", metavar="TIME",
                        help=f"start of the range (default -1h); {FORMS}")
    parser.add_argument("--to", dest="end", default="now", metavar="TIME",
                        help="end of the range, exclusive (default now)")
    parser.add_argument("--bucket", default="", metavar="SIZE",
                        help="aggregate into min/avg/max/count per bucket, e.g. 10s, 1m, 1h "
                        "(default: raw readings)")
    parser.add_argument("--format", choices=export.FORMATS, default="csv",
                        help="output format (default csv)")
    parser.add_argument("--output", "-o", type=Path, default=None, metavar="FILE",
                        help="write to FILE instead of standard output")


def _request(args: argparse.Namespace) -> HistoryRequest:
    try:
        start = parse_instant(args.start)
    except TimeArgError as exc:
        raise _BadArgument("--from", str(exc)) from None
    try:
        end = parse_instant(args.end)
    except TimeArgError as exc:
        raise _BadArgument("--to", str(exc)) from None
    bucket_ms: int | None = None
    if args.bucket and args.bucket.lower() != "raw":
        try:
            bucket_ms = parse_duration_ms(args.bucket)
        except TimeArgError as exc:
            raise _BadArgument("--bucket", str(exc)) from None
    if end <= start:
        raise _BadArgument("--to", f"the range must end after it starts "
                           f"({start.isoformat()} .. {end.isoformat()})")
    devices = tuple(dict.fromkeys(d.strip() for d in args.device))
    metrics = tuple(dict.fromkeys(m.strip() for m in args.metric))
    return HistoryRequest(devices, metrics, start, end, bucket_ms)


def _check_names(request: HistoryRequest, context: AppContext) -> None:
    """Unknown devices or metrics would export an empty file that looks like
    "no data in that range"; say which name is wrong instead."""
    analytics = context.api.analytics
    for device in request.devices:
        try:
            known = analytics.metrics([device])
        except NotFound:
            known = []
        if not known:
            raise _BadArgument("--device", f"no telemetry for device {device!r}")
        missing = [m for m in request.metrics if m not in known]
        if missing:
            raise _BadArgument("--metric", f"device {device!r} has no metric "
                               f"{', '.join(map(repr, missing))} (it has: {', '.join(known)})")


def run_export(args: argparse.Namespace, context: AppContext) -> int:
    try:
        request = _request(args)
        _check_names(request, context)
    except _BadArgument as exc:
        print(f"smartiot export: {exc}", file=sys.stderr)
        return 2
    try:
        series = context.api.analytics.history(request, overlays=False).series
    except ValidationError as exc:
        print(f"smartiot export: {exc}", file=sys.stderr)
        return 2
    target: IO[str]
    if args.output is None:
        manager = nullcontext(sys.stdout)
    else:
        try:
            manager = args.output.open("w", encoding="utf-8", newline="")
        except OSError as exc:
            print(f"smartiot export: --output: cannot write {args.output}: {exc.strerror}",
                  file=sys.stderr)
            return 2
    with manager as target:
        written = export.write(series, target, args.format)
    if args.output is not None:
        print(f"exported {plural(written, 'row')} to {args.output}", file=sys.stderr)
    return 0
