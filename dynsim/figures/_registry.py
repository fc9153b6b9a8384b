"""Registry of regenerable figures: one function per figure, each returning the matplotlib
figure and the data behind it, saved together (PNG, PDF and an `.npz` of the data).

Figure modules import [`register`][dynsim.figures.register] from here; `dynsim.figures.catalogue` imports the figure
modules, so the registry never imports a figure module (no import cycle)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from dynsim.provenance import run_metadata


@dataclass(frozen=True)
class FigureSpec:
    name: str
    """The figure's name: its files are `name.png`, `name.pdf` and `name.npz`."""
    make: Callable
    """`make(fast: bool) -> (matplotlib.figure.Figure, dict[str, np.ndarray])`."""
    description: str
    """One line for `dynsim figures --list` and the progress lines."""
    cost: float = 10.0
    """Rough wall seconds to make it (2-core CPU, cold): parallel runs start the most expensive first."""
    group: str | None = None
    """Figures that build the same compiled programs: a parallel run makes them one after another in one worker,
    so the later ones reuse what the first compiled."""
    requires: str | None = None
    """A module the figure needs beyond dynsim's own dependencies (e.g. `"sklearn"`), from the optional extra
    `extra`: `dynsim figures` with no names skips the figure, saying which extra to install, when it is missing."""
    extra: str | None = None
    """The optional extra that installs `requires` (`pip install 'dynsim[<extra>]'`)."""

    @property
    def available(self) -> bool:
        """Whether what the figure `requires` is installed."""
        import importlib.util

        return self.requires is None or importlib.util.find_spec(self.requires) is not None


FIGURES: dict[str, FigureSpec] = {}


def register(name: str, description: str, cost: float = 10.0, group: str | None = None, requires: str | None = None,
             extra: str | None = None):
    """Decorator adding `make(fast) -> (Figure, data)` to `FIGURES` under `name` (`cost`: rough wall
    seconds, [`FigureSpec.cost`][dynsim.figures.FigureSpec.cost]; `group`: [`FigureSpec.group`][dynsim.figures.FigureSpec.group];
    `requires`, `extra`: [`FigureSpec.requires`][dynsim.figures.FigureSpec.requires])."""

    def deco(fn):
        if name in FIGURES:
            raise ValueError(f"figure {name!r} registered twice")
        FIGURES[name] = FigureSpec(name, fn, description, float(cost), group, requires, extra)
        return fn

    return deco


def save_figure(name: str, fig, data: dict, out_dir: Path) -> list[Path]:
    """Write `name.png`, `name.pdf` and `name.npz` (data + `metadata` JSON) into `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf", out_dir / f"{name}.npz"]
    # a layout engine (every built-in figure is constrained) already fits the figure to its canvas; a tight
    # bounding box would draw each file twice (28 % longer to write five of them, measured)
    engine = fig.get_layout_engine()
    bbox = None if engine is not None else "tight"
    fig.savefig(paths[0], dpi=150, bbox_inches=bbox)
    # the layout is in figure fractions and the PNG's draw has just computed it: the PDF keeps it instead of
    # computing it again (a third less time to write the PDF, measured on the built-in figures)
    if engine is not None:
        fig.set_layout_engine("none")
    try:
        fig.savefig(paths[1], bbox_inches=bbox)
    finally:
        if engine is not None:
            fig.set_layout_engine(engine)
    arrays = {k: np.asarray(v) for k, v in data.items()}
    np.savez_compressed(paths[2], metadata=json.dumps(run_metadata()), **arrays)
    return paths
