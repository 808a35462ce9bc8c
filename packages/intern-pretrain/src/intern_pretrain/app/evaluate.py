"""Benchmark a stage's export with intern-bench once the stage is done (``evaluate`` in ``pretrain.yaml``).

intern-pretrain does not import intern-bench (stages hand over checkpoints, not objects), so the
benchmark runs as intern-bench's own app, one process per task and model, on the hand-over folder::

    python -m intern_bench checkpoint=<run>/export name='<model> (<stage>)' task=<task> splits=[...]
    python -m intern_bench backbone=<model> name='<model> (random init)' task=<task> splits=[...]
    python -m intern_bench backbone=pixels name='raw pixels' task=<task> splits=[...]
    python -m intern_bench report <run>/bench --out <run>/bench/report --baseline '<model> (random init)'

The second line (``baseline: true``) is the same architecture randomly initialised; the report's table
puts it first and its gain chart measures the export against it. With ``parent: true`` the hand-over
the stage started from is benchmarked too (``checkpoint=<parent export>``), the gain chart's baseline
when there is no random-init row: an expert against its Up-A parent in one report. The third
(``pixels: true``, for
classification tasks) is the raw-pixel row of every low-data table. Each cell's results go to
``<run>/bench/<task>/<stage, random_init or pixels>/`` (intern-bench's run folder: its config, log and
``result.json`` files), the report to ``<run>/bench/report/`` (``report.md``, ``report.html``, figures).
The bench processes share ``$INTERN_ROOT`` with the run, so world shards, regime manifests and the
feature cache are made once.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from intern_app import config_dir
from intern_data.tasks import load_tasks

__all__ = ["EvaluationError", "bench_commands", "evaluate_export"]

RANDOM_INIT = "random_init"
PIXELS = "pixels"


class EvaluationError(RuntimeError):
    """A benchmark process that failed; the message names the command and its last error line."""


def _quote(value: Any) -> str:
    """A Hydra override value, quoted when it holds anything beyond a plain path or name."""
    text = str(value)
    if text and all(c.isalnum() or c in "/._-+:~" for c in text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


PARENT = "parent"


def _names(model: str, stage: str, parent: str | None = None) -> dict[str, str]:
    names = {stage: f"{model} ({stage})", RANDOM_INIT: f"{model} (random init)", PIXELS: "raw pixels"}
    return {**names, PARENT: f"{model} ({parent or 'parent'})"}


def _classification_tasks() -> set[str]:
    """The registry's classification tasks (``backbone=pixels`` is a baseline for those alone)."""
    return {name for name, spec in load_tasks(config_dir() / "task").items() if spec.type == "classification"}


def bench_commands(
    export_dir: Path,
    run_dir: Path,
    settings: Mapping[str, Any],
    *,
    model: str,
    stage: str,
    parent: Path | None = None,
) -> list[tuple[Path, list[str]]]:
    """``(bench run folder, argv)`` of every benchmark process ``settings`` asks for, then the report's.

    Args:
        export_dir: the hand-over folder to benchmark.
        run_dir: the stage's run folder; everything goes under ``run_dir/bench``.
        settings: the ``evaluate`` block: ``tasks``, ``splits``, ``baseline``, ``pixels``, ``protocol``,
            ``overrides``.
        model: the registered architecture name (the random-init baseline's ``backbone``).
        stage: the stage's name, for the export's display name.
        parent: the hand-over the stage started from, benchmarked beside the export when
            ``settings.parent`` is true (named by its stage; the gain chart's baseline without
            ``baseline``).
    """
    bench = run_dir / "bench"
    parent = parent if settings.get("parent") else None
    names = _names(model, stage, _stage_of(parent) if parent is not None else None)
    splits = [str(s) for s in settings.get("splits") or ["100pct"]]
    common = [f"splits=[{','.join(splits)}]"]
    if settings.get("protocol"):
        common.append(f"protocol={settings['protocol']}")
    common += [str(o) for o in settings.get("overrides") or []]
    backbones = {stage: f"checkpoint={_quote(export_dir)}"}
    if settings.get("baseline", True):
        backbones[RANDOM_INIT] = f"backbone={_quote(model)}"
    if parent is not None:
        backbones[PARENT] = f"checkpoint={_quote(parent)}"
    if settings.get("pixels", False):
        backbones[PIXELS] = f"backbone={PIXELS}"
    classification = _classification_tasks() if PIXELS in backbones else set()
    commands = []
    for task in settings.get("tasks") or []:
        for slug, backbone in backbones.items():
            if slug == PIXELS and task not in classification:
                continue
            folder = bench / str(task) / slug
            argv = [
                backbone,
                f"name={_quote(names[slug])}",
                f"task={task}",
                *common,
                f"hydra.run.dir={_quote(folder)}",
            ]
            commands.append((folder, [sys.executable, "-m", "intern_bench", *argv]))
    report = [sys.executable, "-m", "intern_bench", "report", str(bench), "--out", str(bench / "report")]
    report += ["--splits", *splits]
    baseline = RANDOM_INIT if RANDOM_INIT in backbones else PARENT if PARENT in backbones else None
    if baseline is not None:
        report += ["--baseline", names[baseline]]
    commands.append((bench / "report", report))
    return commands


def _stage_of(handover: Path) -> str:
    """The stage that wrote a hand-over folder (its ``config.json``), or ``parent``."""
    try:
        return str(json.loads((handover / "config.json").read_text()).get("stage") or PARENT)
    except (OSError, ValueError):
        return PARENT


def _run(argv: Sequence[str], log_file: Path, env: Mapping[str, str]) -> None:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(list(argv), env=dict(env), capture_output=True, text=True)
    log_file.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        lines = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()]
        raise EvaluationError(
            f"the benchmark failed (exit {result.returncode}): {lines[-1] if lines else 'no output'} "
            f"[log: {log_file}; command: {shlex.join(argv)}]"
        )


def _results(bench: Path) -> list[dict[str, Any]]:
    rows = []
    for path in sorted(bench.rglob("result.json")):
        data = json.loads(path.read_text())
        rows.append(data)
    return rows


def evaluate_export(
    export_dir: str | Path,
    run_dir: str | Path,
    settings: Mapping[str, Any],
    *,
    model: str,
    stage: str,
    root_dir: str | Path,
    parent: str | Path | None = None,
) -> Path | None:
    """Benchmark ``export_dir`` (and the random-init baseline) as ``settings`` asks, render the report.

    Prints one line per result and the report's path.

    Returns:
        ``<run_dir>/bench/report/report.md``, or None when intern-bench is not installed (said on stdout).

    Raises:
        EvaluationError: a benchmark process failed (the export itself is kept as it is).
    """
    if importlib.util.find_spec("intern_bench") is None:
        print(
            "evaluate: skipped, intern-bench is not installed (pip install 'intern-pretrain[bench]'); "
            "evaluate=null turns this step off"
        )
        return None
    export_dir, run_dir = Path(export_dir).resolve(), Path(run_dir).resolve()
    env = {**os.environ, "INTERN_ROOT": str(Path(root_dir).resolve())}
    parent = Path(parent).resolve() if parent is not None else None
    *cells, (report_dir, report) = bench_commands(
        export_dir, run_dir, settings, model=model, stage=stage, parent=parent
    )
    for folder, argv in cells:
        print("evaluate: " + " ".join(argv[1:]))
        _run(argv, folder / "bench_stdout.log", env)
    _run(report, report_dir / "report_stdout.log", env)
    for row in _results(run_dir / "bench"):
        metric = row["primary_metric"]
        print(f"{row['model']} | {row['task']} | {row['split']} | {metric} {row['metrics'][metric]:.2f}")
    table = report_dir / "report.md"
    print(f"bench report: {table}")
    return table
