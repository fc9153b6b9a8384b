"""Run folders: resolved config, metadata, atomically written chunk files, loading and merging.

Layout of a run folder::

    config.toml            the resolved configuration (defaults filled in; reloadable)
    metadata.json          versions, backend, devices, precision, seed, command, start/end, status
                           (a part writes metadata.part-I-of-N.json instead)
    chunks/chunk_000017.npz  summaries of configurations [17*C, 18*C) (C = run.chunk_size)

Every chunk is written to a temporary name in `chunks/` and renamed (`os.replace`, atomic on
POSIX), so a killed run leaves whole chunk files or none. Each chunk carries the configuration
digest, its configuration indices and a sha256 of its arrays; `read_chunk` checks all three,
so a truncated, corrupted or foreign file is detected (and recomputed by the runner).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import socket
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dynsim.sweeps._config import SweepConfig, load_config, to_toml
from dynsim.sweeps._errors import ConfigError

CHUNK_DIR = "chunks"


def chunk_path(run: Path, k: int) -> Path:
    """Path of chunk `k`'s result file in the run folder."""
    return Path(run) / CHUNK_DIR / f"chunk_{k:06d}.npz"


def chunk_indices(cfg: SweepConfig, k: int) -> np.ndarray:
    """Configuration indices of chunk `k` (the last chunk may be shorter)."""
    return np.arange(k * cfg.chunk_size, min((k + 1) * cfg.chunk_size, cfg.n_configs), dtype=np.int64)


def _checksum(arrays: dict) -> str:
    h = hashlib.sha256()
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(k.encode() + str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
    return h.hexdigest()


def _temporary_prefix(path: Path) -> str:
    """How the temporary files `atomic_write` writes beside `path` begin."""
    return f".{Path(path).name}."


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to a uniquely named temporary file beside `path`, fsync it, and rename it onto
    `path` (`os.replace`: readers see the old file or the whole new one; concurrent writers never share
    a temporary name)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_chunk(run: Path, k: int, cfg: SweepConfig, arrays: dict) -> Path:
    """Write chunk `k` atomically (`atomic_write`)."""
    arrays = {name: np.asarray(a) for name, a in arrays.items()}
    arrays["index"] = chunk_indices(cfg, k)
    final = chunk_path(run, k)
    final.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, _digest=np.array(cfg.digest()), _checksum=np.array(_checksum(arrays)), **arrays)
    atomic_write(final, buf.getvalue())
    return final


def read_chunk(run: Path, k: int, cfg: SweepConfig) -> dict | None:
    """Chunk `k`'s arrays, or `None` when the file is missing, unreadable, truncated, from another
    configuration, or its checksum does not match (i.e. it must be (re)computed)."""
    path = chunk_path(run, k)
    if not path.is_file():
        return None
    try:
        with zipfile.ZipFile(path) as zf:  # CRC of every member, header padding included
            if zf.testzip() is not None:
                return None
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError):
        return None
    digest, checksum = arrays.pop("_digest", None), arrays.pop("_checksum", None)
    if digest is None or checksum is None or str(digest) != cfg.digest():
        return None
    if "index" not in arrays or not np.array_equal(arrays["index"], chunk_indices(cfg, k)):
        return None
    if str(checksum) != _checksum(arrays):
        return None
    return arrays


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def acquire_lock(path: Path) -> None:
    """Take the run folder's lock file `path` (created exclusively, holding `pid host`), so two runs of one
    part never write the same folder. A lock left by a process that no longer exists on this host is taken over;
    one held by a live process, or from another host, raises `FileExistsError` naming it."""
    path = Path(path)
    me = f"{os.getpid()} {socket.gethostname()}"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid, host = path.read_text().split()[:2]
                pid = int(pid)
            except (OSError, ValueError):
                pid, host = None, None
            if pid is not None and host == socket.gethostname() and not _alive(pid):
                path.unlink(missing_ok=True)  # stale: its process is gone (killed); resume
                continue
            raise FileExistsError(f"another run ({'process ' + str(pid) + ' on ' + str(host) if pid else 'unknown'}) "
                                  f"is writing {path.parent}; wait for it, or delete {path} if it is gone") from None
        with os.fdopen(fd, "w") as f:
            f.write(me)
        return
    raise FileExistsError(f"could not take the lock {path}")


def release_lock(path: Path) -> None:
    """Remove the lock file `path` if this process holds it."""
    path = Path(path)
    try:
        if path.read_text().split()[:1] == [str(os.getpid())]:
            path.unlink()
    except (OSError, ValueError):
        pass


def clean_temporaries(run: Path) -> int:
    """Remove temporary files left by a killed writer; returns how many."""
    d = Path(run) / CHUNK_DIR
    tmps = list(d.glob(".*.tmp")) if d.is_dir() else []
    for t in tmps:
        t.unlink(missing_ok=True)
    return len(tmps)


def metadata_name(part: tuple[int, int] | None) -> str:
    """`metadata.json`, or `metadata.part-i-of-n.json` for `--part i/n`."""
    return "metadata.json" if part is None else f"metadata.part-{part[0]}-of-{part[1]}.json"


def write_json_atomic(path: Path, obj) -> None:
    """Write `obj` as indented JSON through `atomic_write`."""
    atomic_write(path, json.dumps(obj, indent=2, default=str).encode())


def close_metadata(path: Path, meta: dict, status: str, started: float, **counts) -> dict:
    """Record a run's end in its metadata file: the UTC end time, `status` ("complete", "interrupted", "failed"),
    the seconds since `started` (a `time.perf_counter()` value) and `counts` (failed solves, flagged rays)."""
    import datetime as _dt
    import time

    meta.update(end=_dt.datetime.now(_dt.timezone.utc).isoformat(), status=status,
                seconds=round(time.perf_counter() - started, 3), **counts)
    write_json_atomic(path, meta)
    return meta


def prepare_run(run: Path, cfg: SweepConfig, overwrite: bool = False) -> None:
    """Create the run folder with `config.toml`, or check that an existing one holds the same sweep
    (same digest: model, parameters, resolved solver settings and precision), which is what makes rerunning the
    same command resume; another precision or other settings are refused unless `overwrite`."""
    run = Path(run)
    cfg_path = run / "config.toml"
    # parts started together on a shared folder: another part's config.toml may be a temporary file still being
    # written (`atomic_write`); the listing comes before the check for config.toml, which it may have become since
    pending = _temporary_prefix(cfg_path)
    others = [p for p in run.iterdir() if not p.name.startswith(pending)] if run.is_dir() else []
    if others and not cfg_path.is_file():
        raise FileExistsError(f"{run} is not empty and is not a sweep run folder (no config.toml): choose another "
                              f"--out (nothing there is replaced, even with --overwrite)")
    if cfg_path.is_file() and not overwrite:
        try:
            old = load_config(cfg_path)
        except ConfigError as e:
            raise FileExistsError(f"{run}/config.toml is not a readable sweep config ({e}): choose another --out, "
                                  f"or pass --overwrite to replace the run") from None
        was, now = old.raw["precision"], cfg.raw["precision"]
        if was != now:
            raise FileExistsError(f"{run} holds a {was} run and this one is {now}: rerun in {was} "
                                  f"({'with' if was == 'float32' else 'without'} --float32), choose another --out, "
                                  f"or pass --overwrite to replace it")
        if old.digest() != cfg.digest():
            raise FileExistsError(f"{run} holds a different sweep (config.toml differs); choose another --out "
                                  f"or pass --overwrite to replace it")
    elif run.exists() and overwrite:
        shutil.rmtree(run / CHUNK_DIR, ignore_errors=True)
    run.mkdir(parents=True, exist_ok=True)
    if not cfg_path.is_file() or overwrite:  # parts may start together on a shared folder
        atomic_write(cfg_path, to_toml(cfg.raw).encode())


@dataclass
class SweepResult:
    """A loaded sweep. `params[name]` and `summaries[name]` have the configuration axis first
    (`(N, ...)`, flattened C order over `dims`/`shape`); `ts` are the save times; `done` marks
    configurations with results (all `True` unless loaded with `allow_partial`)."""

    config: SweepConfig
    params: dict
    summaries: dict
    ts: np.ndarray
    done: np.ndarray
    metadata: dict

    @property
    def dims(self) -> tuple[str, ...]:
        return self.config.dims

    @property
    def shape(self) -> tuple[int, ...]:
        return self.config.shape

    def grid(self, name: str) -> np.ndarray:
        """A summary or swept parameter reshaped to the sweep's axes, `shape + trailing dims`."""
        a = self.summaries[name] if name in self.summaries else self.params[name]
        return np.asarray(a).reshape(self.shape + np.shape(a)[1:])

    def coords(self) -> dict:
        """Per axis, the values of the parameters swept along it."""
        return {ax.name: ax.values for ax in self.config.axes}

    def to_xarray(self):
        """An `xarray.Dataset` with one dimension per sweep axis (`zip`/`sample` for groups), plus
        `time` and `mode`; needs the optional `xarray` (`pip install dynsim[xarray]`)."""
        try:
            import xarray as xr
        except ImportError:
            raise ImportError("to_xarray needs xarray: pip install 'dynsim[xarray]'") from None
        coords = {}
        for ax in self.config.axes:
            for p, v in ax.values.items():
                coords[p] = (ax.name, np.asarray(v))
        coords["time"] = ("time", self.ts)
        data = {}
        for name, a in self.summaries.items():
            a = self.grid(name)
            extra = a.ndim - len(self.shape)
            trailing = {0: (), 1: ("mode",), 2: ("time", "mode")}[extra]
            if name in ("auc_t", "loss_t"):
                trailing = ("time",)
            data[name] = (self.dims + trailing, a)
        return xr.Dataset(data, coords=coords, attrs={"config": to_toml(self.config.raw),
                                                       "metadata": json.dumps(self.metadata, default=str)})


def read_metadata(run: Path) -> dict:
    """The run's `metadata.json`; without one (parts not merged yet), `{file name: contents}` of the part files.
    An unreadable file warns and reads as `{"status": "unknown", "error": ...}` (the chunks hold the results)."""
    run = Path(run)
    out = {}
    for p in sorted(run.glob("metadata*.json")):
        try:
            out[p.name] = json.loads(p.read_text())
        except (OSError, ValueError) as e:  # the chunks carry the results; a damaged record must not hide them
            warnings.warn(f"{p} is unreadable ({e}); the results are loaded without it", RuntimeWarning, stacklevel=2)
            out[p.name] = {"status": "unknown", "error": f"unreadable {p.name}: {e}"}
    return out.get("metadata.json", out)


def load(run, allow_partial: bool = False) -> SweepResult:
    """Load a run folder's results in one call. Missing or invalid chunks raise `FileNotFoundError`
    (naming them) unless `allow_partial`, which fills them with NaN (`-1` for integers) and marks
    them in `done`."""
    run = Path(run)
    if not (run / "config.toml").is_file():
        raise FileNotFoundError(f"{run} is not a sweep run folder (no config.toml)")
    cfg = load_config(run / "config.toml")
    chunks, missing = {}, []
    for k in range(cfg.n_chunks):
        arrays = read_chunk(run, k, cfg)
        if arrays is None:
            missing.append(k)
        else:
            chunks[k] = arrays
    if missing and not allow_partial:
        raise FileNotFoundError(f"{run}: {len(missing)} of {cfg.n_chunks} chunks missing or invalid "
                                f"(first: {missing[:5]}); rerun the same command to finish, or load(allow_partial=True)")
    if not chunks:
        raise FileNotFoundError(f"{run}: no chunk has results yet")
    N = cfg.n_configs
    template = next(iter(chunks.values()))
    summaries, done = {}, np.zeros(N, bool)
    for name, a in template.items():
        if name == "index":
            continue
        fill = np.nan if np.issubdtype(a.dtype, np.floating) else (False if a.dtype == bool else -1)
        summaries[name] = np.full((N,) + a.shape[1:], fill, a.dtype)
    for k, arrays in chunks.items():
        idx = arrays["index"]
        done[idx] = True
        for name in summaries:
            summaries[name][idx] = arrays[name]
    ts = np.linspace(0.0, float(cfg.solve["t1"]), int(cfg.solve["saves"]))
    params = cfg.values | {k: np.full(N, v) for k, v in cfg.fixed.items()}
    return SweepResult(cfg, params, summaries, ts, done, read_metadata(run))


def merge(out, parts, overwrite: bool = False) -> tuple[Path, list[int]]:
    """Assemble the chunk files of `parts` (run folders of one sweep, e.g. `--part i/n` runs on
    different hosts) into `out`. Checks that every part holds the same configuration and copies each
    valid chunk (atomically). A part given twice is read once; `overwrite` with `out` among the parts is refused
    (it would delete that part's chunks first). Returns `(out, missing_chunks)`."""
    parts = [Path(p) for p in parts]
    if not parts:
        raise ValueError("merge needs at least one part folder")
    unique = {}
    for p in parts:  # a folder given twice is read once
        unique.setdefault(p.resolve(), p)
    parts = list(unique.values())
    if overwrite and Path(out).resolve() in unique:  # --overwrite would delete that part's chunks before reading them
        raise ValueError(f"merge: --overwrite with the output {out} among the parts would delete its chunks first; "
                         f"merge into a new folder, or into that part without --overwrite")
    cfgs = []
    for p in parts:
        if not (p / "config.toml").is_file():
            raise FileNotFoundError(f"{p} is not a sweep run folder (no config.toml)")
        cfgs.append(load_config(p / "config.toml"))
    if len({c.digest() for c in cfgs}) != 1:
        raise ValueError("the parts hold different sweeps (their config.toml differ)")
    cfg = cfgs[0]
    out = Path(out)
    prepare_run(out, cfg, overwrite=overwrite)
    missing = []
    for k in range(cfg.n_chunks):
        if read_chunk(out, k, cfg) is not None:
            continue
        for p in parts:
            arrays = read_chunk(p, k, cfg)
            if arrays is not None:
                arrays.pop("index")
                write_chunk(out, k, cfg, arrays)
                break
        else:
            missing.append(k)
    meta = {"merged_from": [str(p) for p in parts], "parts": {str(p): read_metadata(p) for p in parts},
            "status": "complete" if not missing else "incomplete", "missing_chunks": missing}
    write_json_atomic(out / "metadata.json", meta)
    return out, missing
