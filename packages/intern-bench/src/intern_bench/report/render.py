"""A whole GV-B report from a folder of results: ``report.md``, ``report.html`` and the figures.

The report holds Table 1 (10% and 100% side by side; mean ± spread where a regime has several draws),
the Figure 1 gain chart over a baseline model, one Figure 10 data-regime figure per task (bands for the
spread), Down-A's methods side by side when there are ``lp`` / ``ft`` / ``mf`` results (with MF's image
grids), and a list of every run it used. It draws only what the
results support and says in the text why a figure is absent (no baseline given, a single data
regime, ...). Figures a previous render left in ``out_dir`` are removed first, so none is stale.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from intern_bench.report.bars import gain_bars
from intern_bench.report.curves import save_curves
from intern_bench.report.methods import copy_reconstructions, methods_tables
from intern_bench.report.selection import (
    NothingToDraw,
    aggregate,
    columns,
    models,
    prepare,
    split_name,
    split_order,
    spread_legend,
)
from intern_bench.report.tables import (
    DEFAULT_SPLITS,
    format_value,
    html_page,
    md_escape,
    pivot,
    to_html_table,
    to_markdown,
)
from intern_bench.results import RESULT_FILE, BenchResult, load_results
from intern_data.io import atomic_write_text

TITLE = "GV-B report"


class NoResultsError(FileNotFoundError):
    """A results folder holds no ``result.json``; the message names the folder."""


class _Report:
    """The report's text, written as Markdown and as HTML side by side."""

    def __init__(self) -> None:
        self.md: list[str] = [f"# {TITLE}\n"]
        self.html: list[str] = []

    def heading(self, text: str) -> None:
        self.md.append(f"## {text}\n")
        self.html.append(f"<h2>{html.escape(text)}</h2>\n")

    def note(self, text: str) -> None:
        self.md.append(md_escape(text) + "\n")
        self.html.append(f'<p class="note">{html.escape(text)}</p>\n')

    def image(self, path: Path, alt: str) -> None:
        self.md.append(f"![{md_escape(alt)}]({path.name})\n")
        self.html.append(f'<p><img src="{html.escape(path.name)}" alt="{html.escape(alt)}"></p>\n')


def render_report(
    results_root: str | Path,
    out_dir: str | Path,
    baseline: str | None = None,
    *,
    split: str = "10pct",
    splits: Sequence[str] = DEFAULT_SPLITS,
) -> list[Path]:
    """Write the report of every ``result.json`` under ``results_root`` into ``out_dir``.

    Args:
        results_root: a folder searched recursively for ``result.json`` files.
        out_dir: where ``report.md``, ``report.html``, ``bars.png`` and ``curves_<task>.png`` go.
        baseline: the model the gain chart compares against (no chart without one); first table row.
        split: the data regime of the gain chart.
        splits: the data regimes of the table, side by side per task.

    Returns:
        The files written, figures first, ``report.md`` and ``report.html`` last.

    Raises:
        NoResultsError: ``results_root`` holds no result (or does not exist).
        ResultFileError: a result file is malformed (the message names it).
        ValueError: ``baseline`` is not a model of the results.
    """
    root = Path(results_root)
    try:
        raw = load_results(root)
    except FileNotFoundError as err:
        raise NoResultsError(f"no results: {err}") from err
    if not raw:
        raise NoResultsError(f"no {RESULT_FILE} files under {root}")
    results = prepare(raw)
    names = models(results)
    if baseline is not None and baseline not in names:
        raise ValueError(f"baseline model {baseline!r} is not among the results' models {names}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in [out / "bars.png", *out.glob("curves_*.png"), *out.glob("reconstructions_*.png")]:
        stale.unlink(missing_ok=True)

    written: list[Path] = []
    report = _Report()
    report.note(
        f"{len(raw)} result files under {root}; the newest of each (model, task, split, protocol, draw): "
        f"{len(results)}. Models: {', '.join(names)}."
    )

    report.heading(f"Results at {' and '.join(split_name(s) for s in splits)} (Table 1)")
    table = pivot(results, splits, first_model=baseline)
    if table.columns:
        report.md.append(to_markdown(table))
        report.html.append(to_html_table(table))
    else:
        report.note(f"No result at {', '.join(split_name(s) for s in splits)}: no table.")

    report.heading(f"Gains over a baseline at {split_name(split)} (Figure 1)")
    if baseline is None:
        report.note(f"No baseline model given (--baseline MODEL): no gain chart. Models: {', '.join(names)}.")
    else:
        try:
            path = gain_bars(results, baseline, out / "bars.png", split)
        except NothingToDraw as why:
            report.note(f"No gain chart: {why}.")
        else:
            written.append(path)
            report.image(path, f"gains over {baseline} at {split_name(split)}")

    report.heading("Metric against training data (Figure 10)")
    spread = spread_legend((split, stat) for (_, _, split), stat in aggregate(results).items())
    if spread:
        report.note(f"Lines join the means over the draws; bands span ± one standard deviation. {spread}")
    used: set[str] = set()
    for column in columns(results):
        slug = column.slug
        while slug in used:
            slug += "_"
        try:
            path = save_curves(results, column, out / f"curves_{slug}.png", first_model=baseline)
        except NothingToDraw as why:
            report.note(f"{why}.")
        else:
            used.add(slug)
            written.append(path)
            report.image(path, f"{column.label}: {column.metric} against training data")

    methods = methods_tables(results)
    if methods is not None:
        report.heading("Transfer methods: LP, FT and Down-A's MF (Tables 24-26, 28)")
        report.md.append(methods[0])
        report.html.append(methods[1])
        for path, cell in copy_reconstructions(root if root.is_dir() else root.parent, out):
            written.append(path)
            report.image(path, f"{cell}: training images (top) and their VQ-GAN reconstructions (bottom)")

    report.heading("Runs")
    report.md.append(_runs_markdown(results))
    report.html.append(_runs_html(results))

    written.append(atomic_write_text(out / "report.md", "\n".join(report.md)))
    written.append(atomic_write_text(out / "report.html", html_page(TITLE, "".join(report.html))))
    return written


_RUN_HEADER = (
    "Model",
    "Task",
    "Protocol",
    "Split",
    "Split seed",
    "Seed",
    "Metric",
    "Value",
    "Created",
    "Duration (s)",
    "Model fp",
)


def _run_rows(results: Sequence[BenchResult]) -> list[tuple[str, ...]]:
    ordered = sorted(
        results, key=lambda r: (r.task, r.protocol, r.model, split_order(r.split), r.split_seed or 0)
    )
    return [
        (
            r.model,
            r.task,
            r.protocol,
            r.split,
            str(r.split_seed),
            str(r.seed),
            r.primary_metric,
            format_value(r.value),
            r.created,
            f"{r.duration_s:.1f}",
            r.model_fingerprint[:12],
        )
        for r in ordered
    ]


def _runs_markdown(results: Sequence[BenchResult]) -> str:
    lines = ["| " + " | ".join(_RUN_HEADER) + " |", "|" + "|".join([" --- "] * len(_RUN_HEADER)) + "|"]
    lines += ["| " + " | ".join(md_escape(cell) for cell in row) + " |" for row in _run_rows(results)]
    return "\n".join(lines) + "\n"


def _runs_html(results: Sequence[BenchResult]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in _RUN_HEADER)
    rows = [
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
        for row in _run_rows(results)
    ]
    return (
        f'<table class="runs">\n<thead><tr>{head}</tr></thead>\n<tbody>\n'
        + "\n".join(rows)
        + "\n</tbody>\n</table>\n"
    )
