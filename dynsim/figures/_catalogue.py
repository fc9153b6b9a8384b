"""Every figure of the package: importing this module imports each figure module, which registers
its figures in `dynsim.figures.FIGURES`; then list and regenerate them by name."""

from __future__ import annotations

import re
from pathlib import Path

from dynsim.figures import (agreement, digits, esser2023, halvagal2023, richemond_li, simon2023,  # noqa: F401
                            sweeps, tian2021, tian2021_training)
from dynsim.figures._registry import FIGURES, FigureSpec, save_figure


def load_all() -> dict[str, FigureSpec]:
    """Import every figure module (each registers its figures) and return `FIGURES`."""
    return FIGURES


def figure_names() -> list[str]:
    """Every registered figure name, by paper and then figure number (`tian2021_fig9` before `_fig10`)."""
    load_all()
    return sorted(FIGURES, key=lambda n: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", n)])


_COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
                   "/jax/core/compile/backend_compile_duration")
_compile_seconds = [0.0]  # this process's JAX compile time so far, counted while a figure is made


def _listen(event, duration, **kwargs):
    if event in _COMPILE_EVENTS:
        _compile_seconds[0] += duration


def installed_figures(progress=print) -> list[str]:
    """Every figure whose optional dependencies are installed ([`FigureSpec.requires`][dynsim.figures.FigureSpec.requires]),
    in [`figure_names`][dynsim.figures.figure_names] order; `progress` gets a note for each one left out, naming the
    extra to install."""
    names = []
    for n in figure_names():
        if FIGURES[n].available:
            names.append(n)
        else:
            progress(f"skipped {n}: it needs {FIGURES[n].requires}, from pip install 'dynsim[{FIGURES[n].extra}]'")
    return names


def _make_and_save(name: str, out_dir, fast: bool) -> tuple[list[Path], dict]:
    """Make one figure and write its files; returns the paths and `{"total", "compile"}` wall seconds."""
    import time

    t0, c0 = time.perf_counter(), _compile_seconds[0]
    fig, data = FIGURES[name].make(fast=fast)
    paths = save_figure(name, fig, data, out_dir)
    return paths, {"total": time.perf_counter() - t0, "compile": _compile_seconds[0] - c0}


def _make_group(names: list[str], out_dir, fast: bool) -> list[tuple[list[Path], dict]]:
    """Make figures one after another in this process (they share compiled programs, [`FigureSpec.group`][dynsim.figures.FigureSpec.group])."""
    return [_make_and_save(name, out_dir, fast) for name in names]


def _start_worker(x64: bool, cache_dir) -> None:
    """A figure worker process computes in the parent's precision and shares its compilation cache."""
    import jax

    jax.config.update("jax_enable_x64", x64)
    if cache_dir is not None:
        from dynsim import cache

        cache.enable(cache_dir)
    jax.monitoring.register_event_duration_secs_listener(_listen)  # importing this module registered every figure


def generate(names=None, out_dir="figures", fast=False, progress=print, timings: dict | None = None,
             jobs: int = 1) -> list[Path]:
    """Regenerate the named figures (all, in [`figure_names`][dynsim.figures.figure_names] order, when `names` is empty; then a
    figure whose optional extra is not installed is skipped with a note) into `out_dir`.

    `jobs`: worker processes; above 1 the figures are made in parallel, the most expensive first (their
    [`FigureSpec.cost`][dynsim.figures.FigureSpec.cost]; the figures of one [`FigureSpec.group`][dynsim.figures.FigureSpec.group] one after another in one worker), each
    worker in this process's precision and compilation cache ([`dynsim.cache`][dynsim.cache]). Every figure is computed the
    same way whichever process makes it, so its files do not depend on `jobs`. `timings`: a dict to fill with each figure's `{"total", "compile"}` wall seconds
    (compile: JAX tracing, lowering and XLA compilation, from `jax.monitoring`'s duration events; the rest is
    computing and drawing). Returns the written paths, in `names` order."""
    import jax

    from dynsim import cache

    available = figure_names()
    names = list(names) if names else installed_figures(progress)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise KeyError(f"unknown figure(s) {unknown}; available: {', '.join(available)}")
    if int(jobs) < 1:
        raise ValueError(f"jobs must be a positive number of worker processes, got {jobs!r}")
    jobs = int(jobs)
    results: dict[str, tuple[list[Path], dict]] = {}
    if jobs == 1 or len(names) == 1:
        jax.monitoring.register_event_duration_secs_listener(_listen)
        try:
            for i, name in enumerate(names, 1):
                progress(f"[{i}/{len(names)}] {name}: {FIGURES[name].description}")
                results[name] = _make_and_save(name, out_dir, fast)
        finally:
            jax.monitoring.unregister_event_duration_listener(_listen)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        tasks: dict[str, list[str]] = {}
        for name in names:
            tasks.setdefault(FIGURES[name].group or name, []).append(name)
        order = sorted(tasks.values(), key=lambda group: -sum(FIGURES[n].cost for n in group))
        context = multiprocessing.get_context("spawn")  # JAX's runtime threads do not survive fork
        cache_dir = cache.enabled_dir()
        workers = min(jobs, len(order))
        progress(f"{len(names)} figures on {workers} worker processes "
                 f"(compilation cache: {cache_dir if cache_dir is not None else 'off'})")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                 initializer=_start_worker,
                                 initargs=(bool(jax.config.jax_enable_x64), cache_dir)) as pool:
            with cache.storable_checks(cache_dir is not None):  # the workers start (and read it) in here
                futures = {pool.submit(_make_group, group, out_dir, fast): group for group in order}
            try:
                for future in as_completed(futures):
                    for name, result in zip(futures[future], future.result()):
                        results[name] = result
                        progress(f"[{len(results)}/{len(names)}] {name}: {FIGURES[name].description} "
                                 f"({result[1]['total']:.1f} s)")
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    if timings is not None:
        timings.update({name: results[name][1] for name in names})
    return [p for name in names for p in results[name][0]]
