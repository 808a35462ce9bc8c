"""``python -m intern_bench list | task new | report ...``: the tools that take names and files.

``python -m intern_bench task=<task> ...`` (no verb) is the Hydra app that evaluates a backbone. The
verbs read the task configs of the app's ``conf/task/`` folder, which the app hands them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from intern_bench.report import report_main
from intern_data.tasks import (
    TaskConfigError,
    TaskSpec,
    UnknownSuiteError,
    get_suite,
    load_tasks,
    task_from_shards,
)

VERB_HELP = {
    "list": "the registered benchmark tasks (--suite S: one suite)",
    "task": "task new NAME --root SHARDS: write the task config of a shard folder you made, to edit",
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
    tasks = load_tasks(args.task_dir)
    print(format_table(get_suite(tasks, args.suite) if args.suite is not None else tuple(tasks.values())))


def task_config(spec: TaskSpec) -> dict[str, object]:
    """The config of a shards task, as ``python -m intern_bench task new`` writes it."""
    config: dict[str, object] = {
        "name": spec.name,
        "title": spec.title,
        "type": spec.type,
        "metric": spec.metric,
        "num_classes": spec.num_classes,
        "train_size": spec.train_size,
        "test_size": spec.test_size,
        "source": "shards",
        "root": spec.root,
        "splits": dict(spec.splits),
    }
    if spec.type == "depth":
        config["protocol"] = {"max_depth": None, "eval_crop": None}  # to fill: the depth range in metres
    return config


def cmd_task_new(args: argparse.Namespace) -> None:
    """Write the config of the task a shard folder holds (its index.json) for the user to edit: into the
    app's ``conf/task/``, or ``<--out>/task/`` (a config folder of one's own, found through Hydra's
    search path)."""
    spec = task_from_shards(args.root.resolve(), args.name)
    folder = args.out.resolve() / "task" if args.out else args.task_dir
    out = folder / f"{args.name}.yaml"
    if out.exists() and not args.force:
        raise FileExistsError(f"{out} exists; pass --force to replace it")
    folder.mkdir(parents=True, exist_ok=True)
    header = f"# {args.name}: the shards in {spec.root} (written by python -m intern_bench task new)\n"
    out.write_text(header + yaml.safe_dump(task_config(spec), sort_keys=False))
    print(f"{out}: {spec.type}, {spec.num_classes} classes, splits {dict(spec.splits)}")
    command = f"python -m intern_bench task={args.name} backbone=<backbone>"
    if args.out:
        command += f" 'hydra.searchpath=[file://{args.out.resolve()}]'"
    print(f"benchmark it with: {command}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m intern_bench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help=VERB_HELP["list"])
    listing.add_argument("--suite", help="only this suite (world, real_small, gvb, gvb_cls, gvb_dense, ...)")
    listing.set_defaults(func=cmd_list)
    task = commands.add_parser("task", help=VERB_HELP["task"]).add_subparsers(dest="action", required=True)
    new = task.add_parser("new", help="write conf/task/NAME.yaml from a shard folder's index.json")
    new.add_argument("name")
    new.add_argument(
        "--root", type=Path, required=True, help="the shard folder (python -m intern_data shard)"
    )
    new.add_argument(
        "--out",
        type=Path,
        help="a config folder of your own: writes OUT/task/NAME.yaml (default: the app's conf/)",
    )
    new.add_argument("--force", action="store_true", help="replace an existing config")
    new.set_defaults(func=cmd_task_new)
    return parser


def main(argv: list[str], task_dir: Path) -> int:
    """Run one verb with the task configs of ``task_dir``; a bad name or file ends with one line on
    stderr and exit code 2."""
    if argv[:1] == ["report"]:
        return report_main(argv[1:])
    args = build_parser().parse_args(argv)
    args.task_dir = task_dir
    try:
        args.func(args)
    except (UnknownSuiteError, TaskConfigError, FileExistsError) as err:
        print(f"intern_bench {args.command}: {err}", file=sys.stderr)
        return 2
    return 0
