r"""Boundary searches from a sweep configuration with a `[boundary]` table: in memory or into a run folder.

The configuration is a sweep's ([`dynsim.sweeps.load_config`][dynsim.sweeps.load_config]): its `[grid]`, `[zip]`
and `[random]` axes give the rays, `[params]` the fixed values, `[solve]` and `[metrics]` the solve and the summaries
the criterion reads. `[boundary]` names the searched parameter, its bracket, the criterion and the tolerances. Rays
are searched in blocks of `run.chunk_size`; each block's evaluations are one batched solve through the sweep's
compiled chunk program (vmapped, sharded over `jax.devices()`), so a whole search compiles one program.

A run folder has the sweep layout (`config.toml`, `metadata.json`, `chunks/`): one chunk file per block of rays
holding `boundary`, `lower`, `upper`, `below`, `flag` and `n_evaluations`; rerunning the same command resumes, and
[`dynsim.sweeps.load`][dynsim.sweeps.load] reads it back.
"""

from __future__ import annotations

import datetime as _dt
import json
import sys
import time
import warnings
from pathlib import Path

import jax
import numpy as np

from dynsim.sweeps._bisect import Flag, bisect_rays, iterations_needed
from dynsim.sweeps._continuation import EXPANSIONS, MARGIN, MAX_RAYS, MAX_ROUNDS, continue_boundary
from dynsim.provenance import run_metadata
from dynsim.solvers import GOOD_STATUSES
from dynsim.sweeps import _store as store
from dynsim.sweeps._config import SweepConfig, current_precision, load_config, to_toml
from dynsim.sweeps._errors import ConfigError
from dynsim.sweeps._metrics import criterion
from dynsim.sweeps._runner import ChunkRunner, check_precision, progress_bar as _progress, tally_codes


def load_boundary_config(source, overrides=()) -> SweepConfig:
    """A sweep configuration that has a `[boundary]` table (else [`ConfigError`][dynsim.sweeps.ConfigError])."""
    cfg = source if isinstance(source, SweepConfig) else load_config(source, overrides)
    if not cfg.boundary:
        raise ConfigError("this configuration has no [boundary] table (parameter, bracket, criterion): it is a sweep; "
                          "run it with dynsim sweep, or add [boundary]")
    return cfg


def verdict(summaries: dict, boundary: dict):
    """`(criterion, ok)` of a call's summaries under a `[boundary]` table: the switching criterion and whether each
    solve succeeded."""
    return (criterion(summaries, boundary["criterion"], boundary["level"]),
            np.isin(summaries["status"], GOOD_STATUSES))


class BlockSearch:
    """The search of one block of rays (chunk `k` of the configuration) through a [`ChunkRunner`]."""

    def __init__(self, cfg: SweepConfig, devices=None):
        self.cfg = cfg
        self.runner = ChunkRunner(cfg, devices)
        self.b = cfg.boundary

    def evaluations_per_ray(self) -> int:
        b = self.b
        lo, hi = b["bracket"]
        return b["scan"] + min(b["max_iter"], iterations_needed(lo, hi, b["scan"], b["rtol"], b["atol"], b["log"]))

    def __call__(self, k: int, on_call=None) -> dict:
        b, name = self.b, self.b["parameter"]
        n = store.chunk_indices(self.cfg, k).size

        def evaluate(x):
            return verdict(self.runner(k, {name: x}), b)

        lo, hi = b["bracket"]
        return bisect_rays(evaluate, n, lo, hi, scan=b["scan"], log=b["log"], rtol=b["rtol"], atol=b["atol"],
                           max_iter=b["max_iter"], on_call=on_call)


def _advance(bar, n: int) -> None:
    """Count `n` solves; a search that needs more bisections than estimated raises the total instead of overflowing."""
    if bar.total is not None and bar.n + n > bar.total:
        bar.total = bar.n + n
    bar.update(n)


def find_boundary(cfg, overrides=(), *, devices=None, progress: bool = False):
    """Search every ray of `cfg` (a [`SweepConfig`][dynsim.sweeps.SweepConfig] with `[boundary]`, or a TOML path or
    dict) in memory. Returns a [`SweepResult`][dynsim.sweeps.SweepResult] whose summaries are the per-ray arrays of
    [`bisect_rays`][dynsim.sweeps.bisect_rays] (`result.grid("boundary")` has the shape of the sweep's axes)."""
    cfg = load_boundary_config(cfg, overrides)
    search = BlockSearch(cfg, devices)
    bar = _progress(cfg.n_configs * search.evaluations_per_ray(), cfg.name, progress, unit="solve")
    parts = []
    try:
        for k in range(cfg.n_chunks):
            n = store.chunk_indices(cfg, k).size
            parts.append(search(k, on_call=lambda: _advance(bar, n)))
    finally:
        bar.close()
    summaries = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    params = cfg.values | {k: np.full(cfg.n_configs, v) for k, v in cfg.fixed.items()}
    ts = np.linspace(0.0, float(cfg.solve["t1"]), int(cfg.solve["saves"]))
    return store.SweepResult(cfg, params, summaries, ts, np.ones(cfg.n_configs, bool), run_metadata())


def curve_axis(cfg: SweepConfig) -> str:
    """The swept parameter of a boundary curve: the configuration's one axis, a `[grid]` parameter (else
    [`ConfigError`][dynsim.sweeps.ConfigError])."""
    grid = cfg.raw.get("grid") or {}
    if len(cfg.axes) != 1 or cfg.axes[0].name not in grid:
        raise ConfigError(f"a boundary curve needs exactly one swept parameter, in [grid] (the curve's coordinate); "
                          f"this configuration's axes are {list(cfg.dims) or 'none'}")
    return cfg.axes[0].name


def trace_boundary(cfg, overrides=(), *, bend: float | None = None, margin: float = MARGIN,
                   expansions: int = EXPANSIONS, max_rounds: int = MAX_ROUNDS, max_rays: int = MAX_RAYS,
                   devices=None, progress: bool = False, out=None, command=None) -> dict:
    """The boundary curve of `cfg` (a boundary configuration with one `[grid]` axis: its values are the anchors) by
    [`continue_boundary`][dynsim.sweeps.continue_boundary]: the anchors searched as rays, then rays added where
    the curve bends, each bracketed from its neighbours. Every call of the criterion is one batched solve through
    the sweep's compiled program. A ray added by refinement gets the configuration index `N + j` (`N` the
    configurations of `cfg`, `j` in order of creation), which chooses its PRNG key (start noise).

    Returns the arrays of [`continue_boundary`][dynsim.sweeps.continue_boundary] (ordered by the swept parameter)
    plus `axis` and `parameter`, the two parameters' names. With `out` (a folder) it also writes `config.toml` (the
    resolved configuration) and `curve.npz` (the arrays and a `metadata` JSON string: provenance, the command, the
    options and the wall time) there."""
    cfg = load_boundary_config(cfg, overrides)
    axis = curve_axis(cfg)
    t0 = time.perf_counter()
    b, name = cfg.boundary, cfg.boundary["parameter"]
    runner = ChunkRunner(cfg, devices)
    width = runner.layout.padded
    anchors = np.asarray(cfg.values[axis], float)
    index = {float(v): i for i, v in enumerate(anchors)}

    def evaluate(s, x):
        s, x = np.asarray(s, float), np.asarray(x, float)
        idx = np.array([index.setdefault(float(v), len(index)) for v in s], np.int64)
        c, ok = np.empty(s.size, bool), np.empty(s.size, bool)
        for start in range(0, s.size, width):
            part = slice(start, start + width)
            pending = runner.dispatch_values(idx[part], {axis: s[part], name: x[part]})
            c[part], ok[part] = verdict(runner.collect(pending), b)
        return c, ok

    spec = (cfg.raw.get("grid") or {}).get(axis)
    bar = _progress(None, cfg.name, progress, unit="call")
    try:
        curve = continue_boundary(evaluate, anchors, *b["bracket"], scan=b["scan"], log=b["log"], rtol=b["rtol"],
                                  atol=b["atol"], max_iter=b["max_iter"], bend=bend, margin=margin,
                                  expansions=expansions, max_rounds=max_rounds, max_rays=max_rays,
                                  log_axis=isinstance(spec, dict) and bool(spec.get("log", False)),
                                  on_call=lambda: bar.update(1))
    finally:
        bar.close()
    curve = curve | {"axis": axis, "parameter": name}
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        meta = run_metadata() | {
            "kind": "boundary_curve", "command": list(sys.argv) if command is None else command,
            "config_digest": cfg.digest(), "seconds": time.perf_counter() - t0,
            "options": {"bend": bend, "margin": margin, "expansions": expansions, "max_rounds": max_rounds,
                        "max_rays": max_rays}}
        store.atomic_write(out / "config.toml", to_toml(cfg.raw).encode())
        np.savez(out / "curve.npz", metadata=json.dumps(meta), **curve)
    return curve


def describe_boundary(cfg: SweepConfig, devices=None) -> str:
    """The `--dry-run` report of a boundary search: rays, bracket, criterion, evaluations and layout."""
    search = BlockSearch(cfg, devices)
    b, lay = cfg.boundary, search.runner.layout
    axes = ", ".join(f"{a.name}[{a.size}]" for a in cfg.axes) or "(none: a single ray)"
    per_ray = search.evaluations_per_ray()
    level = "" if b["criterion"] == "collapsed" else f" (level {b['level']})"
    return "\n".join([
        f"boundary search {cfg.name!r}: model {cfg.model['kind']}, {cfg.n_configs} ray(s) over {axes}",
        f"  searched: {b['parameter']} in [{b['bracket'][0]}, {b['bracket'][1]}]"
        f"{' (log)' if b['log'] else ''}, criterion {b['criterion']!r}{level}",
        f"  tolerance: atol={b['atol']} rtol={b['rtol']}; {b['scan']} scan points + at most "
        f"{per_ray - b['scan']} bisections = about {per_ray} solves per ray, {per_ray * cfg.n_configs} in all",
        f"  blocks: {cfg.n_chunks} of {cfg.chunk_size} rays; layout {lay.n_devices} device(s) x {lay.groups} "
        f"group(s) x vmap width {lay.width} ({jax.default_backend()}, {current_precision()})",
        f"  solve: t1={cfg.solve['t1']} method={cfg.solve['method']} rtol={cfg.solve['rtol']} "
        f"atol={cfg.solve['atol']}; collapse={cfg.metrics['collapse']} threshold={cfg.metrics['collapse_threshold']}",
    ])


def run_boundary(cfg, out, *, devices=None, progress: bool = True, overwrite: bool = False, command=None,
                 log=print) -> dict:
    """Run (or resume) the boundary search `cfg` into the run folder `out`; returns the metadata written.
    Blocks with a valid chunk file are skipped; each finished block is written atomically. Rays whose search
    did not end `OK` are counted by [`Flag`][dynsim.sweeps.Flag] name in the metadata and reported."""
    cfg = load_boundary_config(cfg)
    check_precision(cfg)
    out = Path(out)
    store.prepare_run(out, cfg, overwrite=overwrite)
    lock = out / f".{store.metadata_name(None)}.lock"
    store.acquire_lock(lock)
    try:
        return _run_locked(cfg, out, devices, progress, command, log)
    finally:
        store.release_lock(lock)


def _run_locked(cfg, out, devices, progress, command, log) -> dict:
    store.clean_temporaries(out)
    todo, flags = [], {}
    for k in range(cfg.n_chunks):
        kept = store.read_chunk(out, k, cfg)  # None when missing, partial or from another search
        if kept is None:
            todo.append(k)
        else:
            tally_codes(kept["flag"], (Flag.OK,), Flag, flags)
    search = BlockSearch(cfg, devices)
    meta_path = out / store.metadata_name(None)
    meta = run_metadata() | {
        "kind": "boundary", "seed": cfg.seed, "precision": cfg.raw["precision"],
        "command": list(sys.argv) if command is None else command, "config_digest": cfg.digest(),
        "n_rays": cfg.n_configs, "chunk_size": cfg.chunk_size, "n_chunks": cfg.n_chunks,
        "devices_used": [str(d) for d in search.runner.devices], "layout": vars(search.runner.layout),
        "start": _dt.datetime.now(_dt.timezone.utc).isoformat(), "end": None, "status": "running",
        "chunks_reused": cfg.n_chunks - len(todo), "chunks_computed": 0,
    }
    store.write_json_atomic(meta_path, meta)
    n_rays = sum(store.chunk_indices(cfg, k).size for k in todo)
    bar = _progress(n_rays * search.evaluations_per_ray(), cfg.name, progress, unit="solve")
    t0 = time.perf_counter()
    try:
        for k in todo:
            n = store.chunk_indices(cfg, k).size
            res = search(k, on_call=lambda: _advance(bar, n))
            store.write_chunk(out, k, cfg, res)
            tally_codes(res["flag"], (Flag.OK,), Flag, flags)
            meta["chunks_computed"] += 1
    except KeyboardInterrupt:
        store.close_metadata(meta_path, meta, "interrupted", t0, flags=flags)
        raise
    finally:
        bar.close()
    store.close_metadata(meta_path, meta, "complete", t0, flags=flags)
    if flags:
        message = (f"{sum(flags.values())} ray(s) did not end with one bracketed switch {flags} (see "
                   f"dynsim.sweeps.Flag; their brackets are stored)")
        log(f"warning: {message}")
        warnings.warn(message, RuntimeWarning, stacklevel=2)
    return meta
