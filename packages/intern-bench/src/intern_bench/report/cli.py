"""``python -m intern_bench report RESULTS_ROOT [--out DIR] [--baseline MODEL] [--split RULE]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from intern_bench.report.render import NoResultsError, render_report
from intern_bench.report.tables import DEFAULT_SPLITS
from intern_bench.results import ResultFileError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m intern_bench report",
        description="Render the GV-B report (Table 1, gain chart, data-regime curves) of a folder of results",
    )
    parser.add_argument("results_root", type=Path, help="folder searched recursively for result.json files")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: RESULTS_ROOT/report)")
    parser.add_argument("--baseline", default=None, help="model the gain chart compares against")
    parser.add_argument("--split", default="10pct", help="data regime of the gain chart (default: 10pct)")
    parser.add_argument(
        "--splits",
        nargs="+",
        default=list(DEFAULT_SPLITS),
        help="data regimes of the table, side by side (default: 10pct 100pct)",
    )
    return parser


def report_main(argv: list[str]) -> int:
    """Run the report command on ``argv`` (the arguments after ``report``); returns the exit status."""
    args = build_parser().parse_args(argv)
    out = args.out if args.out is not None else args.results_root / "report"
    try:
        written = render_report(args.results_root, out, args.baseline, split=args.split, splits=args.splits)
    except (NoResultsError, ResultFileError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0
