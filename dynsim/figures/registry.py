"""Registry of regenerable figures: one function per figure, each returning the matplotlib
figure and the data behind it, saved together (PNG, PDF and an ``.npz`` of the data)."""

from __future__ import annotations

import json
import platform
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class FigureSpec:
    name: str
    make: Callable  # make(fast: bool) -> (matplotlib.figure.Figure, dict[str, np.ndarray])
    description: str


FIGURES: dict[str, FigureSpec] = {}


def register(name: str, description: str):
    """Decorator adding ``make(fast) -> (Figure, data)`` to :data:`FIGURES` under ``name``."""

    def deco(fn):
        if name in FIGURES:
            raise ValueError(f"figure {name!r} registered twice")
        FIGURES[name] = FigureSpec(name, fn, description)
        return fn

    return deco


def run_metadata() -> dict:
    """Versions, device and precision, stored with every output."""
    import jax
    import jaxlib

    import dynsim

    return {
        "dynsim": dynsim.__version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "backend": jax.default_backend(),
        "devices": [d.device_kind for d in jax.devices()],
        "x64": bool(jax.config.jax_enable_x64),
    }


def save_figure(name: str, fig, data: dict, out_dir: Path) -> list[Path]:
    """Write ``name.png``, ``name.pdf`` and ``name.npz`` (data + ``metadata`` JSON) into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf", out_dir / f"{name}.npz"]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    arrays = {k: np.asarray(v) for k, v in data.items()}
    np.savez_compressed(paths[2], metadata=json.dumps(run_metadata()), **arrays)
    return paths


def load_all() -> dict[str, FigureSpec]:
    """Import every figure module (each registers its figures) and return :data:`FIGURES`."""
    from dynsim.figures import (  # noqa: F401
        agreement, esser2023, halvagal2023, richemond_li, sweeps, tian2021, tian2021_training)

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
