"""Figure regeneration: one module per paper ([`tian2021`][dynsim.figures.tian2021], [`halvagal2023`][dynsim.figures.halvagal2023],
...), one function per figure with a `*_data` function beside it that returns the plotted arrays; a registry
(`FIGURES`) behind `dynsim figures`. [`load_all`][dynsim.figures.load_all] imports every figure module, [`generate`][dynsim.figures.generate]
regenerates figures by name into PNG + data files."""

from dynsim import _aliases
from dynsim.figures._catalogue import figure_names, generate, load_all
from dynsim.figures._registry import FIGURES, FigureSpec, register, save_figure
from dynsim.provenance import run_metadata

__all__ = ["FIGURES", "FigureSpec", "figure_names", "generate", "load_all", "register", "run_metadata", "save_figure"]

_aliases.register(__name__)
