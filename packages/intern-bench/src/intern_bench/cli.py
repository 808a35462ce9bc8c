"""``python -m intern_bench list [--suite S]``: the tools that take names, not configs.

``python -m intern_bench task=<task> ...`` (no sub-command) is the Hydra app that evaluates a backbone.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from intern_bench.report import report_main
from intern_bench.tasks import SUITES, TASKS, TaskSpec, UnknownSuiteError, get_suite

VERB_HELP = {
    "list": "the registered benchmark tasks (--suite S: one suite)",
    "report": "Table-1 table, gain bars and regime curves of a folder of results",
}
COLUMNS = ("name", "type", "classes", "train", "test", "metric", "source")
_RIGHT = {"classes", "train", "test"}


def _row(spec: TaskSpec) -> tuple[str, ...]:
    classes = "-" if spec.num_classes is None else str(spec.num_classes)
    return (
        spec.name,
        spec.type,
        classes,
        f"{spec.train_size:,}",
        f"{spec.test_size:,}",
        spec.metric,
        str(spec.source),
    )


def format_table(specs: Sequence[TaskSpec]) -> str:
    """``specs`` as an aligned text table with a header (numbers right-aligned)."""
    rows = [COLUMNS, *(_row(spec) for spec in specs)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(
            cell.rjust(width) if column in _RIGHT else cell.ljust(width)
            for column, cell, width in zip(COLUMNS, row, widths, strict=True)
        ).rstrip()
        for row in rows
    ]
    return "\n".join(lines)


def cmd_list(args: argparse.Namespace) -> None:
    """Print the tasks of one suite, or every task."""
    print(format_table(get_suite(args.suite) if args.suite is not None else tuple(TASKS.values())))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m intern_bench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help=VERB_HELP["list"])
    listing.add_argument("--suite", help=f"only this suite ({', '.join(SUITES)})")
    listing.set_defaults(func=cmd_list)
    return parser


def main(argv: list[str]) -> int:
    """Run one sub-command; an unknown name ends with one line on stderr and exit code 2."""
    if argv[:1] == ["report"]:
        return report_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except UnknownSuiteError as err:
        print(f"intern_bench {args.command}: {err}", file=sys.stderr)
        return 2
    return 0
