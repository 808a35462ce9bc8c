"""Table 1 of the paper from results: models by tasks, each task's 10% and 100% regimes side by side.

Rows are models, columns tasks (see :mod:`intern_bench.report.selection`), each with one cell per
split. A cell that holds several draws of its regime (``split_seeds``) shows their mean ± their sample
standard deviation. An ``Average`` column holds, per split, the mean over the higher-is-better
columns' means, for a model that has all of them (a partial mean would rank models on different
tasks), and only where there are at least two such columns. The best mean of a column is bold where
two or more models have one; ties are all bold. Rendered as Markdown and as a standalone HTML page.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

from intern_bench.report.selection import (
    CellKey,
    Column,
    Stat,
    aggregate,
    columns,
    models,
    prepare,
    split_name,
    spread_legend,
)
from intern_bench.results import BenchResult

DEFAULT_SPLITS = ("10pct", "100pct")
MISSING = "–"


@dataclass(frozen=True)
class Table:
    """A pivot of results: ``cells[(model, column.key, split)]`` is the primary metric over the draws."""

    models: tuple[str, ...]
    columns: tuple[Column, ...]
    splits: tuple[str, ...]
    cells: dict[CellKey, Stat]
    averaged: tuple[Column, ...]
    averages: dict[tuple[str, str], float]

    def stat(self, model: str, column: Column, split: str) -> Stat | None:
        return self.cells.get((model, column.key, split))

    def value(self, model: str, column: Column, split: str) -> float | None:
        """The cell's mean over its draws."""
        stat = self.stat(model, column, split)
        return None if stat is None else stat.mean

    def best(self, column: Column, split: str) -> set[str]:
        """The models with the column's best value at ``split`` (empty with fewer than two values)."""
        values = {m: v for m in self.models if (v := self.value(m, column, split)) is not None}
        return _best(values, column.higher_is_better)

    def best_average(self, split: str) -> set[str]:
        values = {m: self.averages[(m, split)] for m in self.models if (m, split) in self.averages}
        return _best(values, True)


def _best(values: dict[str, float], higher_is_better: bool) -> set[str]:
    finite = {m: v for m, v in values.items() if math.isfinite(v)}
    if len(values) < 2 or not finite:
        return set()
    target = max(finite.values()) if higher_is_better else min(finite.values())
    return {m for m, v in finite.items() if v == target}


def pivot(
    results: Sequence[BenchResult],
    splits: Sequence[str] = DEFAULT_SPLITS,
    first_model: str | None = None,
) -> Table:
    """Table 1 of ``results`` at ``splits`` (those no result has are left out).

    Args:
        results: any results; the newest per (model, task, split, protocol, split seed) is used.
        splits: the data regimes shown side by side per task, in this order.
        first_model: a model to put in the first row (the baseline), when present.
    """
    wanted = [split_name(s) for s in splits]
    kept = [r for r in prepare(results) if r.split in wanted]
    present = tuple(s for s in wanted if any(r.split == s for r in kept))
    cells = aggregate(kept)
    cols = tuple(columns(kept))
    rows = tuple(models(kept, first=first_model))
    averaged = (
        tuple(c for c in cols if c.higher_is_better) if sum(c.higher_is_better for c in cols) > 1 else ()
    )
    averages = {}
    for model in rows:
        for split in present:
            means = [stat.mean for c in averaged if (stat := cells.get((model, c.key, split))) is not None]
            if averaged and len(means) == len(averaged):
                averages[(model, split)] = sum(means) / len(means)
    return Table(rows, cols, present, cells, averaged, averages)


def format_value(value: float) -> str:
    """One decimal from 10 up (percentages), two from 1, three below (e.g. depth RMSE in metres)."""
    if not math.isfinite(value):
        return str(value)
    magnitude = abs(value)
    digits = 1 if magnitude >= 10 else 2 if magnitude >= 1 else 3
    return f"{value:.{digits}f}"


def format_stat(stat: Stat) -> str:
    """``mean`` (:func:`format_value`), then ``± std`` at the mean's decimals when there are several draws."""
    text = format_value(stat.mean)
    if stat.n < 2:
        return text
    digits = len(text.partition(".")[2]) if math.isfinite(stat.mean) else 3
    return f"{text} ± {stat.std:.{digits}f}"


_MD_ESCAPES = str.maketrans({"\\": "\\\\", "|": "\\|", "*": "\\*", "`": "\\`", "<": "&lt;", ">": "&gt;"})


def md_escape(text: str) -> str:
    """``text`` safe inside a Markdown table cell: no column breaks, emphasis, code or raw HTML."""
    return text.translate(_MD_ESCAPES)


def _row_cells(table: Table, model: str) -> list[tuple[str, bool]]:
    """(text, bold) per data cell of ``model``'s row, in column order."""
    out = []
    for column in table.columns:
        for split in table.splits:
            stat = table.stat(model, column, split)
            out.append(
                (MISSING, False) if stat is None else (format_stat(stat), model in table.best(column, split))
            )
    if table.averaged:
        for split in table.splits:
            value = table.averages.get((model, split))
            out.append(
                (MISSING, False)
                if value is None
                else (format_value(value), model in table.best_average(split))
            )
    return out


def legend(table: Table) -> str:
    """One line on what the columns measure (plain text; Markdown and HTML escape it themselves)."""
    parts = [f"{c.label}: {c.metric} {c.arrow} ({c.protocol})" for c in table.columns]
    text = "↑ higher is better, ↓ lower is better. " + "; ".join(parts) + "."
    if table.averaged:
        names = ", ".join(c.label for c in table.averaged)
        text += f" Average: mean of the higher-is-better columns ({names}) for models that have all of them."
    spread = spread_legend((split, stat) for (_, _, split), stat in table.cells.items())
    return f"{text} {spread}" if spread else text


def to_markdown(table: Table) -> str:
    """The table as GitHub Markdown (names escaped, best per column in bold), legend below."""
    header = ["Model"]
    for column in table.columns:
        header += [f"{md_escape(column.label)} {column.arrow} {split}" for split in table.splits]
    if table.averaged:
        header += [f"Average ↑ {split}" for split in table.splits]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join([" --- "] + [" ---: "] * (len(header) - 1)) + "|",
    ]
    for model in table.models:
        cells = [f"**{text}**" if bold else text for text, bold in _row_cells(table, model)]
        lines.append("| " + " | ".join([md_escape(model), *cells]) + " |")
    return "\n".join(lines) + "\n\n" + md_escape(legend(table)) + "\n"


def to_html_table(table: Table) -> str:
    """The table as an HTML ``<table>`` (two header rows: task, then split), names escaped."""
    esc = html.escape
    span = len(table.splits)
    top = ['<th rowspan="2">Model</th>']
    top += [
        f'<th colspan="{span}">{esc(c.label)} {c.arrow}<br><small>{esc(c.metric)}</small></th>'
        for c in table.columns
    ]
    if table.averaged:
        top.append(f'<th colspan="{span}">Average ↑</th>')
    groups = len(table.columns) + (1 if table.averaged else 0)
    second = [f"<th>{esc(s)}</th>" for _ in range(groups) for s in table.splits]
    rows = []
    for model in table.models:
        cells = [
            f"<td><b>{esc(t)}</b></td>" if bold else f"<td>{esc(t)}</td>"
            for t, bold in _row_cells(table, model)
        ]
        rows.append(f'<tr><th scope="row">{esc(model)}</th>{"".join(cells)}</tr>')
    return (
        '<table class="gvb">\n<thead>\n'
        f"<tr>{''.join(top)}</tr>\n<tr>{''.join(second)}</tr>\n</thead>\n<tbody>\n"
        + "\n".join(rows)
        + f'\n</tbody>\n</table>\n<p class="legend">{esc(legend(table))}</p>\n'
    )


STYLE = """
body { font-family: sans-serif; margin: 2em; }
table.gvb, table.runs { border-collapse: collapse; margin: 1em 0; }
table.gvb th, table.gvb td, table.runs th, table.runs td { border: 1px solid #bbb; padding: 0.25em 0.6em; }
table.gvb td { text-align: right; }
.legend, .note { color: #444; font-size: 0.9em; }
img { max-width: 100%; }
"""


def html_page(title: str, body: str) -> str:
    """A standalone HTML page (inline style, UTF-8) around ``body``; ``title`` is escaped."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n{body}</body>\n</html>\n"
    )


def to_html(table: Table, title: str = "GV-B results") -> str:
    """The table as a standalone HTML page."""
    return html_page(title, to_html_table(table))
