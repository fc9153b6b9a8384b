"""Figure regeneration: a registry with one function per figure (``dynsim figures``)."""

from dynsim.figures.registry import FIGURES, generate, register, run_metadata, save_figure

__all__ = ["FIGURES", "generate", "register", "run_metadata", "save_figure"]
