"""Down-A's methods side by side (paper Tables 24-26) and what MF's VQ-GAN made of the images.

One table per task type: a row per (model, task, data regime), a column per method (``lp``, ``ft``,
``mf``: the protocols of that name) with the primary metric's mean ± spread over the draws, the best in
bold, and MF's FD scores to the upstream data (Table 28: original and reconstructed training images).
The image grids MF cells leave (``transfer/reconstructions.png``: originals above, reconstructions
below) are copied beside the report.
"""

from __future__ import annotations

import html
import shutil
import statistics
from collections.abc import Sequence
from pathlib import Path

from intern_bench.report.selection import split_order
from intern_bench.report.tables import format_value, md_escape
from intern_bench.results import BenchResult

__all__ = ["METHODS", "copy_reconstructions", "methods_tables"]

METHODS = ("lp", "ft", "mf")
FD_KEYS = ("fd_original", "fd_reconstructed")
GRID = Path("transfer") / "reconstructions.png"


def _stat(values: Sequence[float]) -> str:
    if not values:
        return "-"
    mean = statistics.fmean(values)
    spread = f" ± {format_value(statistics.stdev(values))}" if len(values) > 1 else ""
    return format_value(mean) + spread


def _rows(results: Sequence[BenchResult]) -> tuple[list[str], list[list[str]]]:
    """Header and rows (cells as text, the best method's value wrapped in ``**``)."""
    keys = sorted(
        {(r.model, r.task, r.split) for r in results}, key=lambda k: (k[0], k[1], split_order(k[2]))
    )
    metric = results[0].primary_metric
    header = ["Model", "Task", "Split", *(f"{m.upper()} ({metric})" for m in METHODS), "FD orig.", "FD rec."]
    rows = []
    for model, task, split in keys:
        cell = [r for r in results if (r.model, r.task, r.split) == (model, task, split)]
        by_method = {m: [r.value for r in cell if r.protocol == m] for m in METHODS}
        means = {m: statistics.fmean(v) for m, v in by_method.items() if v}
        best = (max if cell[0].higher_is_better else min)(means, key=means.__getitem__) if means else None
        values = [f"**{_stat(by_method[m])}**" if m == best else _stat(by_method[m]) for m in METHODS]
        fd = [_stat([r.metrics[k] for r in cell if r.protocol == "mf" and k in r.metrics]) for k in FD_KEYS]
        rows.append([model, task, split, *values, *fd])
    return header, rows


def _by_type(results: Sequence[BenchResult]) -> list[tuple[str, list[BenchResult]]]:
    chosen = [r for r in results if r.protocol in METHODS]
    return [(t, [r for r in chosen if r.task_type == t]) for t in sorted({r.task_type for r in chosen})]


def methods_tables(results: Sequence[BenchResult]) -> tuple[str, str] | None:
    """Markdown and HTML tables of the ``lp`` / ``ft`` / ``mf`` results, one per task type (None
    without any)."""
    groups = _by_type(results)
    if not groups:
        return None
    md, page = [], []
    for task_type, chosen in groups:
        header, rows = _rows(chosen)
        md.append(f"**{task_type}**\n")
        md.append("| " + " | ".join(header) + " |")
        md.append("|" + "|".join([" --- "] * len(header)) + "|")
        md += ["| " + " | ".join(md_escape(c) if "**" not in c else c for c in row) + " |" for row in rows]
        md.append("")
        cells = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = ["<tr>" + "".join(_html_cell(c) for c in row) + "</tr>" for row in rows]
        page.append(f"<h3>{html.escape(task_type)}</h3>\n<table><thead><tr>{cells}</tr></thead><tbody>")
        page.append("\n".join(body) + "</tbody></table>\n")
    return "\n".join(md) + "\n", "".join(page)


def _html_cell(text: str) -> str:
    if text.startswith("**"):
        return f"<td><b>{html.escape(text.strip('*'))}</b></td>"
    return f"<td>{html.escape(text)}</td>"


def copy_reconstructions(results_root: Path, out_dir: Path) -> list[tuple[Path, str]]:
    """Copy each MF cell's image grid under ``results_root`` to ``out_dir``; ``(copy, cell folder)`` pairs."""
    copies = []
    for index, grid in enumerate(sorted(Path(results_root).rglob(str(GRID)))):
        cell = grid.parent.parent.relative_to(results_root)
        target = out_dir / f"reconstructions_{index}.png"
        shutil.copyfile(grid, target)
        copies.append((target, str(cell) if str(cell) != "." else "this run"))
    return copies
