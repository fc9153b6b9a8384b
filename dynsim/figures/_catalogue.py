"""Every figure of the package: importing this module imports each figure module, which registers
its figures in :data:`dynsim.figures.FIGURES`; then list and regenerate them by name."""

from __future__ import annotations

import re
from pathlib import Path

from dynsim.figures import (agreement, esser2023, halvagal2023, richemond_li, sweeps, tian2021,  # noqa: F401
                            tian2021_training)
from dynsim.figures._registry import FIGURES, FigureSpec, save_figure


def load_all() -> dict[str, FigureSpec]:
    """Import every figure module (each registers its figures) and return :data:`FIGURES`."""
    return FIGURES


def figure_names() -> list[str]:
    """Every registered figure name, by paper and then figure number (``tian2021_fig9`` before ``_fig10``)."""
    load_all()
    return sorted(FIGURES, key=lambda n: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", n)])


def generate(names=None, out_dir="figures", fast=False, progress=print) -> list[Path]:
    """Regenerate the named figures (all, in :func:`figure_names` order, when ``names`` is empty) into ``out_dir``."""
    available = figure_names()
    names = list(names or available)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise KeyError(f"unknown figure(s) {unknown}; available: {', '.join(available)}")
    written = []
    for i, name in enumerate(names, 1):
        progress(f"[{i}/{len(names)}] {name}: {FIGURES[name].description}")
        fig, data = FIGURES[name].make(fast=fast)
        written += save_figure(name, fig, data, out_dir)
    return written
