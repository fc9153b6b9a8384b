"""Figure regeneration: a registry with one function per figure (``dynsim figures``)."""

from dynsim.figures.catalogue import figure_names, generate, load_all
from dynsim.figures.registry import FIGURES, register, save_figure
from dynsim.provenance import run_metadata

__all__ = ["FIGURES", "figure_names", "generate", "load_all", "register", "run_metadata", "save_figure"]
