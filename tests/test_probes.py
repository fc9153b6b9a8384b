"""Hostile-but-fair inputs to the command line and the public API: every one ends in a clear error that names the
problem (CLI: a non-zero exit code and one line on stderr, no traceback; API: ``ValueError`` naming the input),
and no run folder is damaged."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dynsim as ds
from dynsim.cli import main
from dynsim.networks import NetParams, SSLNet, ViewData, train
from dynsim.sweeps import _store as store
from dynsim.sweeps import load, load_config, merge, run_sweep
from dynsim.sweeps._config import to_toml

SMALL = {"name": "probe", "model": {"kind": "tian_modes", "target": "fixed_tau", "n_modes": 2},
         "params": {"w0": 0.7, "wp0": 0.6}, "solve": {"t1": 20.0, "saves": 3},
         "grid": {"sigma2": [0.0, 0.5], "eta": [0.05, 0.1]}, "run": {"chunk_size": 2}}


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "a_file").write_text("x")
    cfg = tmp_path / "s.toml"
    cfg.write_text(to_toml(SMALL))
    return tmp_path


CLI_PROBES = {
    "figures into a file's child": (["figures", "theory_vs_simulation", "--fast", "--out", "{tmp}/a_file/x"], "a_file"),
    "compare into a file's child": (["compare", "--t1", "1", "--out", "{tmp}/a_file/x"], "a_file"),
    "compare with n2 < 1": (["compare", "--n2", "-3"], "n2 must be an integer >= 1"),
    "compare with n2 > n1": (["compare", "--n1", "3", "--n2", "4"], "n2 must be <= n1"),
    "compare per_view without a target noise": (["compare", "--views", "per_view"], "sigma2_target"),
    "sweep into a file's child": (["sweep", "{tmp}/s.toml", "--out", "{tmp}/a_file/run", "--quiet"], "a_file"),
    "sweep with n_modes = 0": (["sweep", "{tmp}/s.toml", "--set", "model.n_modes=0", "--out", "{tmp}/r0"],
                               "n_modes must be >= 1"),
    "sweep with 1e13 configurations": (["sweep", "{tmp}/s.toml", "--set", "grid.eta={start=0, stop=1, num=10000000000000}",
                                        "--dry-run"], "above the limit"),
    "sweep of 2e6 configurations without --yes": (["sweep", "{tmp}/s.toml", "--set",
                                                   "grid.eta={start=0, stop=1, num=1000000}", "--out", "{tmp}/big"],
                                                  "confirm with --yes"),
    "sweep named outside runs/": (["sweep", "{tmp}/s.toml", "--set", "name='../../x'", "--dry-run"], "plain folder name"),
    "sweep --distributed without a cluster": (["sweep", "{tmp}/s.toml", "--distributed", "--dry-run"], "JAX cluster"),
    "sweep plot of a missing run": (["sweep", "plot", "{tmp}/nothing"], "not a sweep run folder"),
    "sweep into a folder that is not a run": (["sweep", "{tmp}/s.toml", "--out", "{tmp}", "--overwrite", "--quiet"],
                                              "not a sweep run folder"),
    "sweep into a folder with a corrupt config.toml": (["sweep", "{tmp}/s.toml", "--out", "{tmp}/corrupt", "--quiet"],
                                                       "not a readable sweep config"),
}


@pytest.mark.parametrize("name", list(CLI_PROBES))
def test_cli_probe_ends_in_one_line(name, folder, capsys):
    argv, expected = CLI_PROBES[name]
    (folder / "corrupt").mkdir()
    (folder / "corrupt" / "config.toml").write_text("[model\nkind = ")
    rc = main([a.replace("{tmp}", str(folder)) for a in argv])
    captured = capsys.readouterr()
    err = captured.err
    assert rc != 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err and expected in err, err
    if name == "sweep of 2e6 configurations without --yes":
        assert "time (estimate from chunk 0)" in captured.out and not (folder / "big").exists()
    if name == "sweep with n_modes = 0":
        assert not (folder / "r0").exists()  # refused before a folder is made
    if name == "sweep into a folder that is not a run":
        assert (folder / "a_file").read_text() == "x"  # nothing replaced


def test_cli_probe_solve_failure_is_one_line(capsys):
    """An online target at lr 5 diverges: the compare command reports the failed solve in one line (exit 1)."""
    assert main(["compare", "--target", "online", "--lr", "5", "--t1", "50"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "NaN/inf" in err and "Traceback" not in err


API_PROBES = {
    "TianParams(alpha_p=None)": (lambda m, y0: ds.solve(m, y0, (ds.TianParams(alpha_p=None), ds.ModeData.isotropic(0.5)),
                                                        1.0), "TianParams.alpha_p must be a real number"),
    "complex alpha_p": (lambda m, y0: ds.solve(m, y0, (ds.TianParams(alpha_p=1 + 1j), ds.ModeData.isotropic(0.5)), 1.0),
                        "TianParams.alpha_p must be a real number"),
    "ModeData.isotropic(n_modes=-1)": (lambda m, y0: ds.ModeData.isotropic(0.5, n_modes=-1), "n_modes must be"),
    "mode counts differ": (lambda m, y0: ds.solve(m, y0, (ds.TianParams(), ds.ModeData.isotropic(0.5, n_modes=3)), 1.0),
                           "shape mismatch"),
    "solve_batch(method=None)": (lambda m, y0: ds.solve_batch(m, y0, (ds.TianParams(), ds.ModeData.isotropic(0.5)), 1.0,
                                                              batch_args=None, method=None), "unknown method None"),
    "empty batch": (lambda m, y0: ds.solve_batch(m, jax.tree.map(lambda x: x[None][:0], y0),
                                                 (ds.TianParams(), ds.ModeData.isotropic(0.5)), 1.0, batch_y0=True,
                                                 batch_args=None), "empty batch"),
    "scalar leaves batched": (lambda m, y0: ds.solve_batch(m, y0, (ds.TianParams(), ds.ModeData.isotropic(0.5)), 1.0),
                              "is a scalar (no batch axis)"),
    "dt0 < 0": (lambda m, y0: ds.solve(m, y0, (ds.TianParams(), ds.ModeData.isotropic(0.5)), 1.0, dt0=-0.1),
                "dt0 must be > 0"),
    "a mode event on a matrix model": (
        lambda m, y0: ds.solve(ds.TianMatrixFlow(), ds.TianMatrixFlow().initial_state(np.full((2, 3), 0.3), np.eye(2)),
                               (ds.TianParams(), ds.MomentData.isotropic(3, 0.5)), 1.0, event=m.collapse_event()),
        "does not apply to a MatrixState"),
}


@pytest.mark.parametrize("name", list(API_PROBES))
def test_api_probe_names_the_input(name):
    m = ds.TianModes()
    y0 = m.initial_state(jnp.array([0.5, 0.6]), jnp.array([0.5, 0.5]))
    call, expected = API_PROBES[name]
    with pytest.raises(ValueError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        call(m, y0)


def test_train_refuses_a_negative_seed():
    net = SSLNet()
    args = (NetParams(), ViewData.isotropic(4, 0.1))
    y0 = net.initial_state(np.full((2, 4), 0.3), np.eye(2), args=args)
    with pytest.raises(ValueError, match="seed must be an integer >= 0, got -1"):
        train(net, y0, args, 0.01, 2, batch=8, seed=-1)


def test_run_folders_are_guarded(tmp_path):
    """--overwrite never empties a folder that is not a run; merging with --overwrite into one of the parts is
    refused before anything is deleted (a part given twice is read once); a second live run into a folder is refused by its lock (a stale lock, from
    a process that is gone, is taken over); a damaged metadata.json does not hide intact chunks."""
    cfg = load_config(SMALL)
    foreign = tmp_path / "foreign"
    (foreign / "chunks").mkdir(parents=True)
    (foreign / "chunks" / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="not a sweep run folder"):
        run_sweep(cfg, foreign, overwrite=True, progress=False, log=lambda *a: None)
    assert (foreign / "chunks" / "mine.txt").read_text() == "keep"
    # a part starting beside another that is still writing config.toml (its temporary file) is not refused
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / ".config.toml.x1y2.tmp").write_text("")
    store.prepare_run(shared, cfg)
    assert load_config(shared / "config.toml").digest() == cfg.digest()

    parts = []
    for i in range(2):
        parts.append(tmp_path / f"part{i}")
        run_sweep(cfg, parts[-1], part=(i, 2), progress=False, log=lambda *a: None)
    with pytest.raises(ValueError, match="would delete its chunks first"):
        merge(parts[0], [parts[0], parts[0], parts[1]], overwrite=True)
    assert len(list((parts[0] / "chunks").glob("*.npz"))) == 1  # part 0 kept its chunk
    out, missing = merge(tmp_path / "m", [parts[0], parts[0], parts[1]], overwrite=True)  # read once each
    assert missing == []

    run = tmp_path / "run"
    run_sweep(cfg, run, progress=False, log=lambda *a: None)
    lock = run / f".{store.metadata_name(None)}.lock"
    lock.write_text(f"1 {__import__('socket').gethostname()}")  # pid 1 is alive: another run holds the folder
    with pytest.raises(FileExistsError, match="another run"):
        run_sweep(cfg, run, progress=False, log=lambda *a: None)
    lock.write_text(f"999999999 {__import__('socket').gethostname()}")  # no such process: stale
    assert run_sweep(cfg, run, progress=False, log=lambda *a: None)["chunks_reused"] == cfg.n_chunks
    assert not lock.exists()

    (run / "metadata.json").write_text("{not json")
    with pytest.warns(RuntimeWarning, match="unreadable"):
        res = load(run)
    assert res.done.all() and res.metadata["status"] == "unknown"
    json.loads((out / "metadata.json").read_text())  # the merged record is intact
