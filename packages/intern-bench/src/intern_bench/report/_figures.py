"""Figures without pyplot: a bare ``Figure`` renders through Agg and holds no global state."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from intern_data.io import atomic_path

# One colour per model, kept across the figures of a report.
PALETTE = (
    "#4C72B0",
    "#DD8452",
    "#55A868",
    "#C44E52",
    "#8172B3",
    "#937860",
    "#DA8BC3",
    "#8C8C8C",
    "#CCB974",
    "#64B5CD",
)


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def save_png(fig: Figure, path: str | Path, dpi: int = 120) -> Path:
    """Write ``fig`` as a PNG at ``path``, atomically (temporary file renamed into place)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    return Path(path)
