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


_COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
                   "/jax/core/compile/backend_compile_duration")


def generate(names=None, out_dir="figures", fast=False, progress=print, timings: dict | None = None) -> list[Path]:
    """Regenerate the named figures (all, in :func:`figure_names` order, when ``names`` is empty) into ``out_dir``.
    ``timings``: a dict to fill with each figure's ``{"total", "compile"}`` wall seconds (compile: JAX tracing,
    lowering and XLA compilation, from :mod:`jax.monitoring`'s duration events; the rest is computing and
    drawing)."""
    import time

    import jax

    available = figure_names()
    names = list(names or available)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise KeyError(f"unknown figure(s) {unknown}; available: {', '.join(available)}")
    compile_seconds = [0.0]

    def listen(event, duration, **kwargs):
        if event in _COMPILE_EVENTS:
            compile_seconds[0] += duration

    if timings is not None:
        jax.monitoring.register_event_duration_secs_listener(listen)
    written = []
    try:
        for i, name in enumerate(names, 1):
            progress(f"[{i}/{len(names)}] {name}: {FIGURES[name].description}")
            t0, c0 = time.perf_counter(), compile_seconds[0]
            fig, data = FIGURES[name].make(fast=fast)
            written += save_figure(name, fig, data, out_dir)
            if timings is not None:
                timings[name] = {"total": time.perf_counter() - t0, "compile": compile_seconds[0] - c0}
    finally:
        if timings is not None:
            jax.monitoring.unregister_event_duration_listener(listen)
    return written
