r"""Executing a sweep: flatten → fixed-size chunks → `vmap` → shard over devices → chunk files.

Parameters flow one way: [`SweepConfig`][dynsim.sweeps.SweepConfig] (values per configuration) →
adapter (`dynsim.sweeps.models`) → [`dynsim.solvers.api.integrate`][dynsim.solvers.integrate] → summaries
(`dynsim.sweeps.metrics`) → chunk files (`dynsim.sweeps.store`).

* **One compile.** Every chunk is padded (repeating its last configuration) to the same size
  `C_pad` = a multiple of `devices × width`; swept *and* fixed floats enter as traced arrays, so
  neither new values nor a new seed recompile.
* **Batching.** On each device the chunk's configurations run as `lax.map` over groups of `width`
  `vmap`-ed solves (`width` from the model's working set, as [`dynsim.solvers.default_chunk_size`][dynsim.solvers.default_chunk_size]).
  Each solve keeps its own step control, so results do not depend on the chunk size.
* **Devices.** With several devices the chunk is split over `jax.devices()` with
  `jax.shard_map` (each device runs its own solver loop; no per-step synchronisation). On CPU,
  expose the cores as devices before JAX starts: `XLA_FLAGS=--xla_force_host_platform_device_count=N`
  (`dynsim sweep` does it, one device per core, unless `XLA_FLAGS` already sets it).
* **Keys.** Configuration `i` gets `jax.random.fold_in(PRNGKey(seed), i)`: results depend on the
  root seed and the index only, never on chunking, devices or parts.
* **Parts and hosts.** `part=(i, n)` computes chunks `[i K/n, (i+1) K/n)` of the `K` chunks (job
  arrays; `i` from 0); `distributed=True` calls `jax.distributed.initialize()` and uses the
  process index and count as the part, on each process's local devices. Parts write chunk files into
  their own (or a shared) run folder; [`dynsim.sweeps.store.merge`][dynsim.sweeps.merge] assembles them.
* **Resume.** Valid chunk files are skipped, so rerunning the same command after a kill recomputes
  only chunks that were in flight; corrupt ones are detected by checksum and recomputed.
"""

from __future__ import annotations

import datetime as _dt
import sys
import time
import warnings
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from dynsim.solvers import GOOD_STATUSES, SolveError, Status, default_chunk_size, solver_config
from dynsim.provenance import run_metadata
from dynsim.sweeps import _metrics as metrics
from dynsim.sweeps import _store as store
from dynsim.sweeps._config import SweepConfig, current_precision, load_config
from dynsim.sweeps._errors import ConfigError
from dynsim.sweeps._models import Recipe, build_model


def recipe_for(cfg: SweepConfig) -> Recipe:
    """The static settings of `cfg` (model adapter, save grid, solver, metric options)."""
    model = build_model(cfg.model)
    s, m, d = cfg.solve, cfg.metrics, cfg.sensitivity
    ts = np.linspace(0.0, float(s["t1"]), int(s["saves"]))
    reverse = bool(d) and d["mode"] == "reverse"
    solver = solver_config(s["method"], jnp.zeros((), jnp.result_type(float)), s.get("rtol"), s.get("atol"),
                           int(s["max_steps"]), ts=ts, adjoint="reverse" if reverse or not d else "forward")
    return Recipe(model=model, t1=float(s["t1"]), saves=int(s["saves"]), solver=solver, collapse=m["collapse"],
                  threshold=float(m["collapse_threshold"]), auc_squared=m["auc"] == "sigma2",
                  fp_fraction=float(m["fp_fraction"]), wrt=tuple(d.get("wrt", ())), outcomes=tuple(d.get("outcomes", ())),
                  reverse=reverse)


def vmap_width(model, per_device: int) -> int:
    """Solves per `vmap` group: the rule of [`dynsim.solvers.api.default_chunk_size`][dynsim.solvers.default_chunk_size] (cache-sized
    groups on CPU, the whole per-device share on accelerators) for the adapter's state size."""
    return default_chunk_size(per_device, model, state_size=model.state_size)


@dataclass(frozen=True)
class Layout:
    """How chunks map onto devices: `padded = n_devices × groups × width` configurations per call."""

    chunk_size: int
    n_devices: int
    width: int
    groups: int

    @property
    def padded(self) -> int:
        return self.n_devices * self.groups * self.width


def layout(cfg: SweepConfig, recipe: Recipe, n_devices: int) -> Layout:
    """Chunk size, device count, vmap width and `lax.map` length for `cfg` on `n_devices` devices."""
    C = min(cfg.chunk_size, cfg.n_configs)
    per_device = -(-C // n_devices)
    width = vmap_width(recipe.model, per_device)
    return Layout(C, n_devices, width, -(-per_device // width))


def _run_one(recipe: Recipe, p: dict, key):
    if recipe.wrt:  # the summaries come with the derivatives, from the same solve
        summaries, derivs = metrics.derivatives(recipe, p, key)
        return summaries | derivs
    return metrics.summarize(recipe.model.simulate(p, key, recipe), recipe)


def _local(recipe: Recipe, lay: Layout, fixed: dict, values: dict, idx, root):
    """One device's share: `(n,)` configurations as `lax.map` over `vmap` groups of `lay.width`."""
    n = idx.shape[0]
    keys = config_keys(root, idx)
    grouped = jax.tree.map(lambda x: x.reshape((n // lay.width, lay.width) + x.shape[1:]), (values, keys))

    def group(args):
        vals, ks = args
        return jax.vmap(lambda v, k: _run_one(recipe, fixed | v, k))(vals, ks)

    out = jax.lax.map(group, grouped)
    return jax.tree.map(lambda x: x.reshape((n,) + x.shape[2:]), out)


@partial(jax.jit, static_argnames=("recipe", "lay", "devices"))
def _chunk_call(recipe, lay, devices, fixed, values, idx, root):
    body = partial(_local, recipe, lay)
    if len(devices) == 1:
        return body(fixed, values, idx, root)
    from jax.sharding import Mesh, PartitionSpec as P

    mesh = Mesh(np.array(devices), ("d",))
    return jax.shard_map(body, mesh=mesh, in_specs=(P(), P("d"), P("d"), P()), out_specs=P("d"),
                         check_vma=False)(fixed, values, idx, root)


def part_chunks(n_chunks: int, part: tuple[int, int] | None) -> range:
    """Chunk range of part `(i, n)` (contiguous, sizes differing by at most one)."""
    if part is None:
        return range(n_chunks)
    i, n = part
    if not (isinstance(i, int) and isinstance(n, int) and n >= 1 and 0 <= i < n):
        raise ValueError(f"part must be i/n with 0 <= i < n, got {i}/{n}")
    return range(i * n_chunks // n, (i + 1) * n_chunks // n)


def distributed_part(devices=None):
    """Join the `jax.distributed` cluster (once; before JAX computes anything) and return this process's
    `((process_index, process_count), local devices)`. Without a cluster: `ValueError` saying so."""
    if not jax.distributed.is_initialized():
        try:
            jax.distributed.initialize()
        except (ValueError, RuntimeError) as e:
            raise ValueError(f"distributed mode needs a JAX cluster (a coordinator and a process id, e.g. from SLURM "
                             f"or JAX_COORDINATOR_ADDRESS); jax.distributed.initialize() said: {e}") from None
    return (jax.process_index(), jax.process_count()), (jax.local_devices() if devices is None else devices)


class ChunkRunner:
    """Computes chunks of one sweep on `devices`; `__call__(k)` returns chunk `k`'s summaries (numpy)."""

    def __init__(self, cfg: SweepConfig, devices=None):
        self.cfg = cfg
        self.recipe = recipe_for(cfg)
        self.devices = tuple(jax.devices() if devices is None else devices)
        self.layout = layout(cfg, self.recipe, len(self.devices))
        dtype = self.dtype = jnp.result_type(float)
        self.fixed = {k: jnp.asarray(v, dtype) for k, v in cfg.fixed.items()}
        self.values = {k: np.asarray(v, dtype) for k, v in cfg.values.items()}
        self.root = jax.random.PRNGKey(cfg.seed)

    def dispatch(self, k: int, extra: dict | None = None):
        """Start chunk `k` (asynchronously); returns `(indices, device outputs)`. `extra` gives further parameter
        values per configuration of the chunk (`(n_k,)` arrays, e.g. the searched parameter of a boundary search)."""
        idx = store.chunk_indices(self.cfg, k)
        return self.dispatch_values(idx, {name: v[idx] for name, v in self.values.items()} | dict(extra or {}))

    def dispatch_values(self, indices, values: dict):
        """Start one call for configurations given by value: `values` maps every swept parameter to `(n,)` arrays
        and `indices` (`(n,)`, `n` at most the layout's padded width) are the configurations' indices, which only
        choose their PRNG keys. Returns `(indices, device outputs)` as `dispatch` does."""
        idx = np.asarray(indices, np.int64)
        if not 1 <= idx.size <= self.layout.padded:
            raise ValueError(f"one call takes 1 to {self.layout.padded} configurations, got {idx.size}")
        missing = sorted(set(self.values) - set(values))
        if missing:
            raise ValueError(f"no values given for the swept parameter(s) {missing}")

        def pad(v):
            return np.concatenate([v, np.full(self.layout.padded - v.size, v[-1], v.dtype)])

        vals = {name: pad(np.asarray(v, self.dtype)) for name, v in values.items()}
        out = _chunk_call(self.recipe, self.layout, self.devices, self.fixed, vals, jnp.asarray(pad(idx)), self.root)
        return idx, out

    @staticmethod
    def collect(pending) -> dict:
        idx, out = pending
        return {name: np.asarray(a)[: idx.size] for name, a in out.items()}

    def __call__(self, k: int, extra: dict | None = None) -> dict:
        return self.collect(self.dispatch(k, extra))

    def time_chunk(self) -> tuple[float, float]:
        """`(first, again)`: wall seconds of chunk 0 computed twice; the first includes compilation."""
        times = []
        for _ in range(2):
            t = time.perf_counter()
            self(0)
            times.append(time.perf_counter() - t)
        return times[0], times[1]

    def estimate(self) -> dict:
        """Rough memory figures in bytes: one call's working set, one chunk's results, the whole sweep on disk."""
        T, M = self.recipe.saves, self.recipe.model.n_modes
        per_result = 8 * (M + 2 * T * M + 2 * T + 9)
        work = 8 * self.recipe.model.state_size * (T + 12)  # saves + solver stages and scratch
        return {"per_call": self.layout.padded * (work + per_result), "per_chunk_file": self.cfg.chunk_size * per_result,
                "disk": self.cfg.n_configs * per_result}


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024:
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds:.2g} s"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def describe(cfg: SweepConfig, devices=None, part=None, timed: bool = False) -> str:
    """The `--dry-run` report: configurations, axes, chunks, layout and memory estimates; `timed`: also a time
    estimate from computing chunk 0 twice (compile, then one chunk; adaptive solves vary between chunks, so it
    is a rough figure)."""
    r = ChunkRunner(cfg, devices)
    lay, est = r.layout, r.estimate()
    chunks = part_chunks(cfg.n_chunks, part)
    axes = ", ".join(f"{a.name}[{a.size}]" + (f"({', '.join(a.values)})" if a.name in ("zip", "sample") else "")
                     for a in cfg.axes) or "(none: a single configuration)"
    lines = [
        f"sweep {cfg.name!r}: model {cfg.model['kind']}, {cfg.n_configs} configuration(s) over {axes}",
        f"  chunks: {cfg.n_chunks} of {cfg.chunk_size}" + (f"; part {part[0]}/{part[1]} runs chunks "
                                                            f"{chunks.start}..{chunks.stop - 1}" if part else ""),
        f"  layout: {lay.n_devices} device(s) x {lay.groups} group(s) x vmap width {lay.width} = {lay.padded} "
        f"solves per call ({jax.default_backend()}, {current_precision()})",
        f"  memory (estimate): {_human(est['per_call'])} per call, {_human(est['per_chunk_file'])} per chunk file, "
        f"{_human(est['disk'])} for the whole sweep on disk",
        f"  solve: t1={cfg.solve['t1']} saves={cfg.solve['saves']} method={cfg.solve['method']}; "
        f"collapse={cfg.metrics['collapse']} threshold={cfg.metrics['collapse_threshold']} auc={cfg.metrics['auc']}",
    ]
    if cfg.sensitivity:
        d = cfg.sensitivity
        lines.append(f"  sensitivities ({d['mode']} mode): d({', '.join(d['outcomes'])}) / d({', '.join(d['wrt'])}), "
                     f"stored as d_<outcome>_d_<parameter>")
    if timed:
        first, again = r.time_chunk()
        n = len(chunks)
        lines.append(f"  time (estimate from chunk 0): compile {_duration(max(first - again, 0.0))}, "
                     f"{_duration(again)} per chunk -> about {_duration(n * again)} for {n} chunk(s)")
    return "\n".join(lines)


def progress_bar(total: int | None, desc: str, enabled: bool, unit: str = "cfg"):
    """The progress bar of sweeps and boundary searches (tqdm on stderr)."""
    from tqdm import tqdm  # plain text bar: works in terminals, logs and notebooks without ipywidgets

    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, file=sys.stderr, dynamic_ncols=True,
                smoothing=0.1)


def tally_codes(codes, good, names, counts: dict) -> np.ndarray:
    """Add the entries of `codes` that are not in `good` to `counts`, by the name the enum `names` gives each code
    (failed solves by [`Status`][dynsim.solvers.Status], searches by `Flag`); returns the mask of those entries."""
    codes = np.asarray(codes)
    bad = ~np.isin(codes, good)
    for code in np.unique(codes[bad]):
        name = names(int(code)).name
        counts[name] = counts.get(name, 0) + int(np.sum(codes == code))
    return bad


def _count_failures(status, failed: dict) -> np.ndarray:
    """Add the failed solves among `status` to `failed`; returns the mask of failed configurations."""
    return tally_codes(status, GOOD_STATUSES, Status, failed)


def config_keys(root, idx):
    """The PRNG key of each configuration index in `idx`: `fold_in(root, i)`, so results depend on the root seed and
    the index only."""
    return jax.vmap(lambda i: jax.random.fold_in(root, i))(idx)


def check_precision(cfg: SweepConfig) -> None:
    """A [`ConfigError`][dynsim.sweeps.ConfigError] unless `cfg`'s precision is the one this process computes in."""
    here = current_precision()
    if cfg.raw["precision"] != here:
        raise ConfigError(f"the config says precision = {cfg.raw['precision']!r} but this process computes in {here} "
                          f"({'drop' if here == 'float32' else 'add'} --float32, or change the config)")


def run_sweep(cfg: SweepConfig, out, *, part=None, devices=None, progress: bool = True, overwrite: bool = False,
              distributed: bool = False, command=None, log=print, on_chunk=None) -> dict:
    """Run (or resume) `cfg` (a [`SweepConfig`][dynsim.sweeps.SweepConfig] or the path of a TOML config) into the run folder
    `out`; returns the metadata written.

    Skips valid chunk files, recomputes missing/corrupt ones, writes each chunk atomically as it
    finishes (dispatching the next chunk first, so the devices stay busy while the host writes).
    Failed solves are counted (over every chunk of the part, reused ones included), flagged in the `status` summary
    and recorded under `failed` in the metadata;
    `run.on_failure` says what else happens: `"warn"` (default) also logs and issues a `RuntimeWarning` at
    the end, `"flag"` nothing more, `"raise"` stops after the first chunk with a failure (that chunk written,
    the metadata's status `"failed"`) with [`SolveError`][dynsim.solvers.SolveError].
    `on_chunk(k, n_written)` is called after each chunk file is written (e.g. for a GUI or a test). An
    interrupt (Ctrl-C) leaves the written chunks and the status `"interrupted"`; rerunning resumes. A lock file
    per part (`acquire_lock`) refuses a second run into the same folder while the first
    is alive.
    """
    if not isinstance(cfg, SweepConfig):
        cfg = load_config(cfg)
    check_precision(cfg)
    if distributed:
        part, devices = distributed_part(devices)
    out = Path(out)
    store.prepare_run(out, cfg, overwrite=overwrite)
    lock = out / f".{store.metadata_name(part)}.lock"
    store.acquire_lock(lock)
    try:
        return _run_locked(cfg, out, part, devices, progress, command, log, on_chunk)
    finally:
        store.release_lock(lock)


def _run_locked(cfg, out, part, devices, progress, command, log, on_chunk) -> dict:
    n_tmp = store.clean_temporaries(out)
    runner = ChunkRunner(cfg, devices)
    mine = part_chunks(cfg.n_chunks, part)
    todo, bad = [], []
    failed: dict[str, int] = {}  # over every chunk of this part, reused or computed
    for k in mine:
        if store.chunk_path(out, k).is_file():
            kept = store.read_chunk(out, k, cfg)
            if kept is not None:
                _count_failures(kept["status"], failed)
                continue
            bad.append(k)
        todo.append(k)
    if bad:
        log(f"{len(bad)} corrupt or partial chunk file(s) will be recomputed: {bad[:10]}")
    if n_tmp:
        log(f"removed {n_tmp} temporary file(s) left by an interrupted run")
    start = _dt.datetime.now(_dt.timezone.utc)
    meta_path = out / store.metadata_name(part)
    meta = run_metadata() | {
        "seed": cfg.seed, "precision": cfg.raw["precision"],
        "command": list(sys.argv) if command is None else command, "config_digest": cfg.digest(),
        "n_configs": cfg.n_configs, "chunk_size": cfg.chunk_size, "n_chunks": cfg.n_chunks,
        "part": None if part is None else list(part), "chunks_in_part": [mine.start, mine.stop],
        "devices_used": [str(d) for d in runner.devices], "layout": vars(runner.layout),
        "start": start.isoformat(), "end": None, "status": "running",
        "chunks_reused": len(mine) - len(todo), "chunks_computed": 0,
    }
    store.write_json_atomic(meta_path, meta)
    n_cfg = sum(store.chunk_indices(cfg, k).size for k in todo)
    t0 = time.perf_counter()
    bar = progress_bar(n_cfg, cfg.name, progress)
    try:
        pending = None
        for k in todo + [None]:
            nxt = None if k is None else (k, runner.dispatch(k))
            if pending is not None:
                kk, job = pending
                res = runner.collect(job)
                store.write_chunk(out, kk, cfg, res)
                bad = _count_failures(res["status"], failed)
                meta["chunks_computed"] += 1
                bar.update(res["status"].size)
                if on_chunk is not None:
                    on_chunk(kk, meta["chunks_computed"])
                if bad.any() and cfg.on_failure == "raise":
                    first = store.chunk_indices(cfg, kk)[bad][:5].tolist()
                    store.close_metadata(meta_path, meta, "failed", t0, failed=failed)
                    raise SolveError(f"{int(bad.sum())} configuration(s) of chunk {kk} failed to solve {failed} "
                                     f"(first: {first}); the chunk is written, the run stopped "
                                     f"(run.on_failure = 'raise'; 'warn' or 'flag' finish the run)")
            pending = nxt
    except KeyboardInterrupt:
        # written chunks are complete files; the metadata says so, and the same command resumes
        store.close_metadata(meta_path, meta, "interrupted", t0, failed=failed)
        raise
    finally:
        bar.close()
    store.close_metadata(meta_path, meta, "complete", t0, failed=failed)
    if failed and cfg.on_failure == "warn":
        message = (f"{sum(failed.values())} configuration(s) failed to solve {failed}; their summaries are "
                   f"flagged in 'status' (see dynsim.solvers.Status)")
        log(f"warning: {message}")
        warnings.warn(message, RuntimeWarning, stacklevel=3)
    return meta
