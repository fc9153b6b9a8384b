"""Sweeps: config expansion and validation, invariance to chunking / devices / parts, kill-and-resume,
corrupt chunks, Li et al.'s (2022) AUC closed forms and the Tian collapse
boundary (Tian et al. 2021) recovered by a sweep."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dynsim as ds
from dynsim.cli import main
from dynsim.networks import NetParams, SSLNet, ViewData, flow
from dynsim.sweeps import ConfigError, load, load_config, merge, run_sweep
from dynsim.sweeps import _metrics as sm
from dynsim.sweeps import _store as store
from dynsim.sweeps._config import to_toml
from dynsim.sweeps._runner import ChunkRunner, describe

REPO = Path(__file__).resolve().parents[1]
#: XLA's default CPU emitters, asked for explicitly (the tests otherwise compile with the classic ones, conftest.py)
DEFAULT_EMITTERS = "--xla_cpu_use_fusion_emitters=true"


def _flags(flag: str) -> str:
    """XLA_FLAGS for a process whose results a test compares with this process's: `flag` added to the compile
    setting of the test processes (tests/conftest.py)."""
    return f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()


def small(**over):
    """A 24-configuration Tian sweep (fixed tau, 3 sigma2 x 8 eta) with per-mode noise from the keys."""
    raw = {"name": "small", "seed": 3,
           "model": {"kind": "tian_modes", "target": "fixed_tau", "n_modes": 3},
           "params": {"w0": 0.7, "wp0": 0.6, "init_std": 0.05},
           "solve": {"t1": 300.0, "saves": 7},
           "run": {"chunk_size": 64},
           "grid": {"sigma2": [0.0, 0.5, 2.0], "eta": {"start": 0.02, "stop": 0.3, "num": 8}}}
    for k, v in over.items():
        sec, key = k.split("__")
        raw.setdefault(sec, {})[key] = v
    return raw


def assert_same(a, b, rtol=0.0):
    """Equal summaries: integers and flags exactly, floats to ``rtol`` (0: bitwise)."""
    assert a.summaries.keys() == b.summaries.keys()
    for k in a.summaries:
        x, y = a.summaries[k], b.summaries[k]
        if rtol and np.issubdtype(x.dtype, np.floating):
            np.testing.assert_allclose(x, y, rtol=rtol, atol=0, err_msg=k)
        else:
            np.testing.assert_array_equal(x, y, err_msg=k)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted run of :func:`small` on one device, chunk size 64."""
    out = tmp_path_factory.mktemp("ref") / "run"
    run_sweep(load_config(small()), out, devices=jax.devices()[:1], progress=False)
    return load(out)


# --- configuration -----------------------------------------------------------------------------
def test_grid_zip_random_expansion_in_c_order():
    cfg = load_config(small(grid__eta={"start": 0.01, "stop": 1.0, "num": 3, "log": True},
                            zip__tau=[0.5, 1.0], zip__beta=[0.1, 0.2],
                            random__n=4, random__alpha_p={"low": 0.5, "high": 2.0, "log": True}))
    assert cfg.dims == ("sigma2", "eta", "zip", "sample") and cfg.shape == (3, 3, 2, 4)
    assert cfg.n_configs == 72 and cfg.n_chunks == 2
    v = cfg.values
    np.testing.assert_allclose(np.unique(v["eta"]), [0.01, 0.1, 1.0], rtol=1e-14)
    i = np.ravel_multi_index((2, 1, 1, 3), cfg.shape)  # first axis slowest
    assert (v["sigma2"][i], v["eta"][i], v["tau"][i], v["beta"][i]) == (2.0, pytest.approx(0.1), 1.0, 0.2)
    a = v["alpha_p"].reshape(cfg.shape)
    assert np.all((a >= 0.5) & (a <= 2.0)) and np.all(a == a[:1, :1, :1, :])  # one draw per sample
    np.testing.assert_array_equal(load_config(small(random__n=4, random__alpha_p={"low": 0.5, "high": 2.0}))
                                  .values["alpha_p"][:4],
                                  load_config(small(random__n=4, random__alpha_p={"low": 0.5, "high": 2.0}))
                                  .values["alpha_p"][:4])  # reproducible from the seed
    assert cfg.fixed["w0"] == 0.7 and "alpha_p" not in cfg.fixed and "eta" not in cfg.fixed


def test_overrides_and_resolved_config_round_trip(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(to_toml(small()))
    cfg = load_config(path, ["solve.t1=10", "grid.eta=[0.1, 0.2]", "model.n_modes=2", "params.tau=0.5"])
    assert cfg.solve["t1"] == 10 and cfg.shape == (3, 2) and cfg.model["n_modes"] == 2 and cfg.fixed["tau"] == 0.5
    again = tmp_path / "resolved.toml"
    again.write_text(to_toml(cfg.raw))
    assert load_config(again).digest() == cfg.digest()


@pytest.mark.parametrize("raw, match", [
    (dict(small(), colour=1), "unknown key"),
    (small(model__kind="nope"), "unknown model kind"),
    (small(model__width=3), "unknown option"),
    (small(model__n_modes="4"), "model.n_modes must be of type int"),
    (small(model__target="momentum"), "target"),
    (small(params__gamma=1.0), r"unknown key\(s\) \['gamma'\] in \[params\]"),
    (small(params__tau="one"), "params.tau must be a number"),
    (small(grid__eta={"start": 0.0, "stop": 1.0, "num": 0}), "num must be an integer >= 1"),
    (small(grid__eta={"start": 0.0, "stop": 1.0, "num": 3, "log": True}), "log spacing needs start > 0"),
    (small(grid__eta=[]), "empty list"),
    (small(random__n=3, random__beta={"low": 2.0, "high": 1.0}), "low must be < high"),
    (small(zip__tau=[1.0, 0.5], zip__beta=[0.1]), "one length"),
    (small(zip__eta=[0.1, 0.2]), "swept twice"),
    (small(params__eta=0.1), "both fixed in \\[params\\] and swept"),
    (small(grid__alpha_p=[1.0, -1.0]), "alpha_p"),
    (small(solve__saves=1), "saves must be an integer >= 2"),
    (small(solve__method="euler"), "solve.method"),
    (small(metrics__collapse="some"), "metrics.collapse"),
    (small(metrics__fp_fraction=1.5), "fp_fraction"),
    (small(run__chunk_size=0), "chunk_size"),
    (small(run__on_failure="ignore"), "run.on_failure must be one of raise, warn, flag"),
])
def test_bad_configs_fail_before_running(raw, match):
    with pytest.raises(ConfigError, match=match):
        load_config(raw)


def test_on_failure_warns_flags_or_stops_the_run(tmp_path):
    """``run.on_failure``: a step budget of 3 cannot reach t1 = 300, so every solve ends as MAX_STEPS (the solver
    core's status); "warn" finishes with a RuntimeWarning, "flag" finishes silently, "raise" stops after the
    first chunk with SolveError; all three record the failures and keep the config digest (the choice does not
    change results)."""
    import warnings

    raw = small(solve__max_steps=3, grid__eta=[0.05, 0.1], grid__sigma2=[0.0], run__chunk_size=1)
    cfgs = {mode: load_config(raw | {"run": {"chunk_size": 1, "on_failure": mode}}) for mode in ("warn", "flag", "raise")}
    assert len({c.digest() for c in cfgs.values()}) == 1
    assert load_config(raw).on_failure == ds.solvers.DEFAULTS.sweep_on_failure == "warn"
    with pytest.warns(RuntimeWarning, match=r"2 configuration\(s\) failed to solve \{'MAX_STEPS': 2\}"):
        meta = run_sweep(cfgs["warn"], tmp_path / "warn", progress=False, log=lambda *a: None)
    assert meta["status"] == "complete" and meta["failed"] == {"MAX_STEPS": 2}
    assert np.all(load(tmp_path / "warn").summaries["status"] == ds.Status.MAX_STEPS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        meta = run_sweep(cfgs["flag"], tmp_path / "flag", progress=False, log=lambda *a: None)
    assert meta["failed"] == {"MAX_STEPS": 2}
    with pytest.raises(ds.SolveError, match=r"1 configuration\(s\) of chunk 0 failed .*first: \[0\]"):
        run_sweep(cfgs["raise"], tmp_path / "raise", progress=False, log=lambda *a: None)
    meta = json.loads((tmp_path / "raise" / store.metadata_name(None)).read_text())
    assert meta["status"] == "failed" and meta["chunks_computed"] == 1


# --- metrics -----------------------------------------------------------------------------------
def test_auc_closed_forms_b2():
    """Li et al. 2022: flat (d+1)/(2d), rank-k 1-(k-1)/(2d), the d=512 numbers, power laws (derived and printed in
    docs/theory/richemond_li_wang.md#auc-closed-forms)."""
    d = 512
    assert float(sm.collapse_auc(jnp.ones(d))) == pytest.approx(sm.auc_flat(d), abs=1e-14)
    assert sm.auc_flat(d) == pytest.approx(0.500977, abs=1e-6)
    for k, want in ((1, 1.0), (10, 0.991211), (100, 0.903320)):
        sv = jnp.concatenate([jnp.full(k, 3.0), jnp.zeros(d - k)])
        assert float(sm.collapse_auc(sv)) == pytest.approx(sm.auc_rank_k(k, d), abs=1e-14)
        assert sm.auc_rank_k(k, d) == pytest.approx(want, abs=1e-6)
    i = jnp.arange(1, d + 1.0)
    for beta, want in ((0.5, 0.6572), (1.0, 0.8553), (2.0, 0.9938)):
        assert float(sm.collapse_auc(i**-beta)) == pytest.approx(want, abs=5e-5)
    sv = jax.random.uniform(jax.random.PRNGKey(0), (d,))
    assert float(sm.collapse_auc(7 * sv[::-1])) == pytest.approx(float(sm.collapse_auc(sv)), abs=1e-14)
    # squared = the sigma^2 variant: equals the un-squared AUC of sigma^2, and differs from it
    assert float(sm.collapse_auc(sv, squared=True)) == pytest.approx(float(sm.collapse_auc(sv**2)), abs=1e-14)
    assert float(sm.collapse_auc(sv, squared=True)) > float(sm.collapse_auc(sv)) + 0.01
    assert float(sm.collapse_auc(jnp.zeros(4))) == 1.0


def test_time_to_fraction_and_effective_rank():
    ts = jnp.linspace(0.0, 20.0, 2001)
    total = 1 + jnp.exp(-ts)  # 90 % of the way to the end value at t = ln 10
    assert float(sm.time_to_fraction(ts, total, 0.9)) == pytest.approx(np.log(10), abs=1e-4)
    assert float(sm.time_to_fraction(ts, jnp.ones_like(ts), 0.9)) == 0.0
    assert float(sm.effective_rank(jnp.array([1.0, 1.0, 1.0, 0.0]))) == pytest.approx(3.0, abs=1e-12)
    assert float(sm.effective_rank(jnp.zeros(3))) == 0.0


# --- the analytic boundary ---------------------------------------------------------------------
def test_tian_collapse_boundary_recovered_within_grid_spacing(reference):
    """Tian et al. 2021 Obs. 5: fixed tau = 1, every mode collapses iff eta > 1/(4(1 + sigma2))."""
    r = reference
    sig, eta = r.coords()["sigma2"]["sigma2"], r.coords()["eta"]["eta"]
    c = r.grid("collapsed")
    d_eta = eta[1] - eta[0]
    for i, s in enumerate(sig):
        eta_c = 1 / (4 * (1 + s))
        first = int(np.argmax(c[i]))
        assert c[i, first] and np.all(c[i, first:]) and not np.any(c[i, :first])
        assert eta[first] - d_eta <= eta_c + 1e-12 and eta_c <= eta[first] + 1e-12
    assert np.all(r.grid("surviving_modes")[c] == 0) and np.all(r.grid("surviving_modes")[~c] == 3)
    assert np.all(np.isfinite(r.grid("collapse_time")[c])) and np.all(np.isinf(r.grid("collapse_time")[~c]))
    assert set(np.unique(r.summaries["status"])) <= {0, 1}
    # survivors sit at s* = p*_+^2 / alpha_p (p*_+ of Tian et al. 2021) when converged
    i, j = 1, 0
    s2, e = sig[i], eta[j]
    p_plus = (1 + np.sqrt(1 - 4 * e * (1 + s2))) / (2 * (1 + s2))
    assert r.grid("converged")[i, j]
    np.testing.assert_allclose(r.grid("final_spectrum")[i, j], p_plus**2, rtol=1e-5)  # slow last approach


# --- invariance: chunks, devices, seeds, models --------------------------------------------------
def test_chunk_size_7_and_2_devices_give_identical_results(reference, tmp_path):
    """The same sweep in a process with 2 CPU devices and chunks of 7 (vmap width 4, shard_map over both)
    equals the reference (1 device, chunk 64, width 16). The test suite itself runs on one device: exposing
    two slows every other test by ~40 % on a 2-core machine."""
    cfg = tmp_path / "s.toml"
    cfg.write_text(to_toml(small()))
    env = dict(os.environ, XLA_FLAGS=_flags("--xla_force_host_platform_device_count=2"))
    r = subprocess.run([sys.executable, "-m", "dynsim", "sweep", str(cfg), "--chunk-size", "7", "--out",
                        str(tmp_path / "c7"), "--quiet"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    r7 = load(tmp_path / "c7")
    assert r7.metadata["n_chunks"] == 4 and r7.metadata["layout"]["n_devices"] == 2
    assert r7.metadata["layout"]["width"] == 4 and reference.metadata["layout"]["width"] == 16
    # identical up to XLA's shape-dependent vectorisation round-off (bitwise in our runs)
    assert_same(r7, reference, rtol=1e-12)


def test_keys_come_from_seed_and_index_only(reference):
    cfg = load_config(small())
    runner = ChunkRunner(cfg, jax.devices()[:1])
    first = runner(0)
    np.testing.assert_array_equal(first["final_spectrum"], reference.summaries["final_spectrum"])
    other = ChunkRunner(load_config(dict(small(), seed=4)), jax.devices()[:1])(0)
    assert not np.allclose(other["spectrum"][:, 0], first["spectrum"][:, 0])  # noise differs with the seed
    w0 = first["spectrum"][:, 0]
    assert len({tuple(np.round(w, 12)) for w in w0}) == w0.shape[0]  # every index its own draw


@pytest.mark.slow  # ~14 s
def test_ssl_modes_sweep_equals_tian_modes_sweep(reference):
    """Two independent model implementations (SSLModes' Euclidean loss with a trainable predictor vs
    TianModes) give the same summaries through the sweep machinery."""
    raw = small()
    raw["model"] = {"kind": "ssl_modes", "loss": "euclidean", "predictor": "trainable", "target": "fixed_tau",
                    "n_modes": 3}
    res = ChunkRunner(load_config(raw), jax.devices()[:1])(0)
    np.testing.assert_allclose(res["final_spectrum"], reference.summaries["final_spectrum"], rtol=1e-7, atol=1e-12)
    np.testing.assert_array_equal(res["collapsed"], reference.summaries["collapsed"])


NET_SWEEP = {"name": "net", "seed": 1, "model": {"kind": "network", "target": "online", "n1": 5, "n2": 3},
             "params": {"sigma2": 0.5, "wp0": 0.5, "init_scale": 1.5},
             "solve": {"t1": 150.0, "saves": 4}, "grid": {"wd": [0.05, 0.3]}}


def test_network_sweep_collapses_above_the_weight_decay_threshold():
    """SimSiam network (trainable predictor, Tian et al. 2021): weight decay below / above 1/(4(1+sigma2)) = 1/6
    keeps / collapses the representation."""
    res = ChunkRunner(load_config(NET_SWEEP), jax.devices()[:1])(0)
    assert list(res["collapsed"]) == [False, True]
    assert res["surviving_modes"][0] >= 1 and res["surviving_modes"][1] == 0  # weak modes may still die (random start)
    assert np.isinf(res["collapse_time"][0]) and np.isfinite(res["collapse_time"][1])


@pytest.mark.slow  # ~12 s
def test_network_sweep_matches_a_direct_flow():
    """The network adapter's spectrum equals a direct SSLNet flow from the same key's W(0)."""
    res = ChunkRunner(load_config(NET_SWEEP), jax.devices()[:1])(0)
    key = jax.random.fold_in(jax.random.PRNGKey(1), 0)
    W0 = 1.5 * jax.random.normal(key, (3, 5), jnp.float32).astype(jnp.float64) / np.sqrt(5)  # start_normals
    net = SSLNet(target="online")
    args = (NetParams(wd=0.05), ViewData.isotropic(5, 0.5))
    sol = flow(net, net.initial_state(W0, 0.5 * jnp.eye(3), args=args), args, 150.0, saveat=4, method="rk45")
    s = np.sort(np.linalg.eigvalsh(np.asarray(sol.ys.W[-1] @ sol.ys.W[-1].T)))[::-1]
    np.testing.assert_allclose(res["final_spectrum"][0], s, rtol=1e-6)


@pytest.mark.slow  # ~20 s; test_grassmann checks Oja vs naive flows directly
def test_grassmann_sweep_constrained_vs_naive():
    """Esser et al. 2023 through the sweep: Oja's constrained flow keeps W orthonormal and its feature variances
    reach the top-h eigenvalues of Sigma (no collapse); the naive flow collapses to rank one, and completely
    (to zero) iff its weight decay gamma > lambda_1(A) = 2 max Sigma."""
    base = {"seed": 2, "solve": {"t1": 150.0, "saves": 5}, "params": {"data_decay": 1.0}}
    oja = ChunkRunner(load_config(base | {"model": {"kind": "grassmann", "flow": "oja", "d": 8, "h": 3},
                                          "grid": {"init_scale": [0.5, 2.0]}}), jax.devices()[:1])(0)
    np.testing.assert_allclose(oja["final_spectrum"], 1.0, atol=1e-6)
    np.testing.assert_allclose(oja["final_variance"], np.broadcast_to([1, 1 / 2, 1 / 3], (2, 3)), atol=1e-6)
    assert not oja["collapsed"].any() and np.all(oja["effective_rank"] > 2.99)
    nai = ChunkRunner(load_config(base | {"model": {"kind": "grassmann", "flow": "naive", "d": 8, "h": 3},
                                          "grid": {"weight_decay": [1.9, 2.1]}}), jax.devices()[:1])(0)
    assert list(nai["collapsed"]) == [False, True] and set(nai["status"]) <= {0, 1}
    s = nai["final_spectrum"][0]  # gamma = 1.9: grows, but onto one direction (sigma_2/sigma_1 ~ e^{-t})
    assert s[1] / s[0] < 1e-12 and nai["auc"][0] == pytest.approx(1.0, abs=1e-6)  # rank one: AUC = 1 - (k-1)/(2d) at k = 1 (docs/theory/richemond_li_wang.md#auc-closed-forms)


# --- storage: resume, corruption, parts -------------------------------------------------------
def test_corrupt_and_partial_chunks_are_detected_and_recomputed(reference, tmp_path):
    out = tmp_path / "run"
    cfg = load_config(small(run__chunk_size=7))  # 4 chunks: 7, 7, 7, 3
    run_sweep(cfg, out, progress=False)
    p1, p3 = store.chunk_path(out, 1), store.chunk_path(out, 3)
    p1.write_bytes(p1.read_bytes()[: p1.stat().st_size // 2])  # truncated
    data = bytearray(p3.read_bytes())
    with np.load(p3) as z:
        at = data.find(z["spectrum"].tobytes()[:64])
    assert at > 0
    data[at + 40] ^= 0xFF  # one flipped bit pattern inside the stored spectrum
    p3.write_bytes(bytes(data))
    (out / "chunks" / ".chunk_000000.npz.x.tmp").write_bytes(b"half a file")
    assert store.read_chunk(out, 1, cfg) is None and store.read_chunk(out, 3, cfg) is None
    with pytest.raises(FileNotFoundError, match="2 of 4 chunks missing or invalid"):
        load(out)
    assert load(out, allow_partial=True).done.sum() == 24 - 7 - 3
    logs = []
    meta = run_sweep(cfg, out, progress=False, log=logs.append)
    assert meta["chunks_computed"] == 2 and meta["chunks_reused"] == 2
    assert any("recomputed: [1, 3]" in m for m in logs) and not list((out / "chunks").glob(".*.tmp"))
    assert_same(load(out), reference, rtol=1e-12)


def test_a_folder_with_another_sweep_is_refused(tmp_path):
    store.prepare_run(tmp_path / "r", load_config(small(grid__eta=[0.1])))
    store.prepare_run(tmp_path / "r", load_config(small(grid__eta=[0.1])))  # the same sweep: accepted
    with pytest.raises(FileExistsError, match="different sweep"):
        run_sweep(load_config(small(grid__eta=[0.2])), tmp_path / "r", progress=False)


def test_parts_merge_into_one_run(reference, tmp_path):
    cfg = load_config(small(run__chunk_size=7))
    for i in range(2):
        run_sweep(cfg, tmp_path / f"part{i}", part=(i, 2), progress=False)
    assert len(list((tmp_path / "part0" / "chunks").glob("*.npz"))) == 2
    assert main(["sweep", "merge", str(tmp_path / "merged"), str(tmp_path / "part0")]) == 1  # incomplete
    assert main(["sweep", "merge", str(tmp_path / "merged"), str(tmp_path / "part0"), str(tmp_path / "part1")]) == 0
    merged = load(tmp_path / "merged")
    assert_same(merged, reference, rtol=1e-12)
    assert merged.metadata["status"] == "complete" and len(merged.metadata["merged_from"]) == 2
    store.prepare_run(tmp_path / "other", load_config(small(run__chunk_size=6)))
    with pytest.raises(ValueError, match="different sweeps"):
        merge(tmp_path / "m2", [tmp_path / "part0", tmp_path / "other"])


KILL_AFTER_THIRD_CHUNK = """
import os, signal, sys
import jax
jax.config.update("jax_enable_x64", True)
from dynsim.sweeps import load_config, run_sweep

def kill(k, n):  # SIGKILL right after the 3rd chunk file, with the 4th chunk already dispatched
    if n == 3:
        os.kill(os.getpid(), signal.SIGKILL)

run_sweep(load_config(sys.argv[1]), sys.argv[2], progress=False, on_chunk=kill)
"""


@pytest.mark.slow  # ~23 s (two interpreter starts); by default corrupt and partial chunks are recomputed on rerun
def test_killed_subprocess_resumes_to_identical_results(reference, tmp_path):
    """A sweep process SIGKILLed mid-run (chunk 4 of 12 in flight), then the same `dynsim sweep` command:
    only the missing chunks are computed and the results equal an uninterrupted run."""
    cfg_path = tmp_path / "kill.toml"
    cfg_path.write_text(to_toml(small(run__chunk_size=2)))  # 24 configurations in 12 chunks
    out = tmp_path / "run"
    env = dict(os.environ, XLA_FLAGS=_flags("--xla_force_host_platform_device_count=1"))
    killed = subprocess.run([sys.executable, "-c", KILL_AFTER_THIRD_CHUNK, str(cfg_path), str(out)], env=env,
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(list((out / "chunks").glob("chunk_*.npz"))) == 3
    cmd = [sys.executable, "-m", "dynsim", "sweep", str(cfg_path), "--out", str(out), "--quiet"]
    resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "9 chunk(s) computed, 3 reused" in resumed.stdout
    assert_same(load(out), reference, rtol=1e-12)  # chunk size 2 vs 64: round-off only


# --- command line and plots -----------------------------------------------------------------------
def test_cli_dry_run_errors_plot_and_xarray(tmp_path, capsys):
    cfg = tmp_path / "s.toml"
    cfg.write_text(to_toml(small()))
    assert main(["sweep", str(cfg), "--dry-run", "--set", "grid.eta=[0.1, 0.2]"]) == 0
    text = capsys.readouterr().out
    assert "6 configuration(s) over sigma2[3], eta[2]" in text and "chunks: 1 of 64" in text and "memory" in text
    assert main(["sweep", str(cfg), "--set", "params.gamma=1"]) == 2
    assert "unknown key(s) ['gamma'] in [params]" in capsys.readouterr().err
    assert main(["sweep", str(cfg), "--part", "2/2", "--dry-run"]) == 2
    out = tmp_path / "run"
    assert main(["sweep", "run", str(cfg), "--out", str(out), "--quiet", "--chunk-size", "7"]) == 0
    assert main(["sweep", "plot", str(out), "--metric", "auc"]) == 0
    assert all((out / f).stat().st_size > 1000 for f in ("phase.png", "spectra.png", "phase.pdf"))
    meta = load(out).metadata
    for key in ("dynsim", "jax", "jaxlib", "numpy", "backend", "devices", "precision", "seed", "command", "start",
                "end"):
        assert meta[key] is not None, key
    assert meta["precision"] == "float64" and meta["status"] == "complete"
    pytest.importorskip("xarray")
    ds = load(out).to_xarray()
    assert ds["collapsed"].dims == ("sigma2", "eta") and ds["spectrum"].dims == ("sigma2", "eta", "time", "mode")
    np.testing.assert_array_equal(ds["eta"].values, load_config(cfg).axes[1].values["eta"])


def test_example_configs_load_and_describe():
    folder = REPO / "dynsim" / "sweeps" / "examples"
    names = sorted(p.name for p in folder.glob("*.toml"))
    assert "tian_boundary.toml" in names
    for p in folder.glob("*.toml"):
        assert "configuration(s)" in describe(load_config(p))


def test_float32_sweep_runs(tmp_path):
    out = tmp_path / "f32"
    # XLA's default emitters, chosen in XLA_FLAGS (the command keeps them, and the run's metadata says so)
    env = dict(os.environ, XLA_FLAGS=DEFAULT_EMITTERS)
    r = subprocess.run([sys.executable, "-m", "dynsim", "--float32", "sweep", "--example", "tian_boundary",
                        "--set", "grid.sigma2=[0.5]", "--set", "grid.eta=[0.05, 0.25]", "--set", "model.n_modes=2",
                        "--out", str(out), "--quiet"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    res = load(out)
    assert res.summaries["final_spectrum"].dtype == np.float32 and res.metadata["precision"] == "float32"
    assert res.metadata["xla_flags"] == f"{DEFAULT_EMITTERS} --xla_force_host_platform_device_count={os.cpu_count()}"
    assert list(res.summaries["collapsed"]) == [False, True]


@pytest.mark.slow  # ~18 s; the boundary itself is checked by test_tian_collapse_boundary_recovered_within_grid_spacing
def test_sweep_figure_data(tmp_path):
    """`dynsim figures sweep_tian_boundary --fast`: files written; the stored phase diagram is 0 below and 1
    above eta = 1/(4(1+sigma2)) except within one grid step of it; the two spectra straddle the boundary."""
    assert main(["figures", "sweep_tian_boundary", "--fast", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "sweep_tian_boundary.png").stat().st_size > 1000
    d = np.load(tmp_path / "sweep_tian_boundary.npz")
    eta_c = 1 / (4 * (1 + d["sigma2"]))
    step = d["eta"][1] - d["eta"][0]
    E, C = np.meshgrid(d["eta"], eta_c, indexing="ij")
    assert np.all(d["collapsed"][E < C] == 0) and np.all(d["collapsed"][E > C + step] == 1)
    assert d["spectrum_below"][-1].min() > 1e-2 and d["spectrum_above"][-1].max() <= 1e-6 * (1 + 1e-9)


@pytest.mark.slow  # ~30 s: two processes joining a local jax.distributed cluster
def test_distributed_two_processes_on_one_shared_folder(reference, tmp_path):
    """`--distributed` under a (faked, local) SLURM job of two tasks: each process joins the cluster, runs part
    process_index/process_count on its own device into one shared folder; merge finds it complete."""
    cfg = tmp_path / "s.toml"
    cfg.write_text(to_toml(small(run__chunk_size=7)))
    out = tmp_path / "shared"
    procs = []
    for i in range(2):
        env = dict(os.environ, SLURM_JOB_ID=str(4000 + os.getpid() % 1000), SLURM_STEP_NODELIST="localhost",
                   SLURM_NTASKS="2", SLURM_PROCID=str(i), SLURM_LOCALID=str(i), SLURM_STEP_NUM_NODES="1",
                   XLA_FLAGS=_flags("--xla_force_host_platform_device_count=1"))
        procs.append(subprocess.Popen([sys.executable, "-m", "dynsim", "sweep", str(cfg), "--distributed", "--out",
                                       str(out), "--quiet"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    assert sorted(f.name for f in out.glob("metadata.part-*.json")) == ["metadata.part-0-of-2.json",
                                                                        "metadata.part-1-of-2.json"]
    assert main(["sweep", "merge", str(out), str(out)]) == 0
    assert_same(load(out), reference, rtol=1e-12)


def test_analytic_boundary_only_where_theory_gives_it():
    from dynsim.sweeps._models import build_model

    fixed = load_config(small(params__tau=0.5)).fixed
    curve = build_model({"kind": "tian_modes", "target": "fixed_tau"}).boundary("sigma2", "eta", fixed)
    assert curve(1.0) == pytest.approx(0.25 / 8, rel=1e-14)
    no_tau = {k: v for k, v in fixed.items() if k != "tau"}  # tau swept on another axis: no single line
    assert build_model({"kind": "tian_modes", "target": "fixed_tau"}).boundary("sigma2", "eta", no_tau) is None
    assert build_model({"kind": "tian_modes", "target": "ema"}).boundary("sigma2", "eta", fixed) is None
    assert build_model({"kind": "tian_modes", "target": "online"}).boundary("sigma2", "eta", fixed)(0.0) == 0.25


def test_views_option_moves_the_tian_boundary_and_names_its_parameter():
    """``views`` (``docs/theory/views.md``): Tian et al.'s (2021) threshold eta_c = tau^2 l12^2 / (4 l11) reads the
    online view's noise only, so at sigma2 = 1 it is 1/8 when both views are noised and 1/4 when only the target
    view is: eta = 0.2 collapses in the first sweep and survives in the second (eta = 0.3 collapses in both).
    ``sigma2_target`` is a parameter only with ``views = "per_view"``; the views' moments follow ModeData.views /
    ViewData with per-view noise exactly."""
    from dynsim.sweeps import build_model, mode_data, view_data

    raw = small(grid__sigma2=[1.0], grid__eta=[0.2, 0.3], model__n_modes=1, params__init_std=0.0)
    same = ChunkRunner(load_config(raw), jax.devices()[:1])(0)
    raw["model"]["views"] = "clean_online"
    clean = ChunkRunner(load_config(raw), jax.devices()[:1])(0)
    assert list(same["collapsed"]) == [True, True] and list(clean["collapsed"]) == [False, True]
    model = build_model(raw["model"])
    assert model.boundary("sigma2", "eta", {"tau": 1.0, "data_decay": 0.0})(np.array([0.0, 1.0, 3.0])) == \
        pytest.approx([0.25, 0.25, 0.25])
    # symmetric views: Obs. 5, eta_c = tau^2/(4(1+sigma2)) = 1/8 at sigma2 = 1 (docs/theory/tian2021.md#eq-16)
    assert build_model(small()["model"]).boundary("sigma2", "eta", {"tau": 1.0, "data_decay": 0.0})(1.0) == 0.125

    with pytest.raises(ConfigError, match="sigma2_target"):
        load_config(raw | {"params": {"sigma2_target": 0.2}})
    per_view = small(model__views="per_view", params__sigma2_target=-0.1)
    with pytest.raises(ConfigError, match="sigma2_target"):
        load_config(per_view)
    with pytest.raises(ConfigError, match="views must be one of"):
        load_config(small(model__views="online"))
    p = {"sigma2": 0.5, "sigma2_target": 0.2, "data_decay": 0.0}
    data = mode_data(p, 3, "per_view")
    expected = ds.ModeData.views(0.5, 0.2, 3)
    for got, want in ((data.l11, expected.l11), (data.l12, expected.l12), (data.l22, expected.l22)):
        np.testing.assert_allclose(got, want, rtol=1e-15)
    S11, S12, S22 = view_data(p, 4, "per_view").view_moments()
    np.testing.assert_allclose(np.diag(S11), 1.5)
    np.testing.assert_allclose(np.diag(S22), 1.2)
    np.testing.assert_allclose(S12, np.eye(4))
    assert mode_data(p, 3, "same").symmetric and view_data(p, 4).symmetric  # the default is unchanged


def test_a_configurations_start_does_not_depend_on_the_precision():
    """Random starts are drawn in float32 and cast: the float64 start rounds to the float32 one exactly, so the
    same seed and index give the same start (to float32 resolution) in both precisions."""
    from dynsim.sweeps import _models as sm

    key = jax.random.fold_in(jax.random.PRNGKey(3), 17)
    p = {"w0": 0.5, "wp0": 0.5, "init_std": 0.1}
    w64, wp64 = sm._mode_start(p, key, 6, jnp.float64)
    w32, wp32 = sm._mode_start(p, key, 6, jnp.float32)
    np.testing.assert_allclose(w64, w32, rtol=1e-7)
    np.testing.assert_allclose(wp64, wp32, rtol=1e-7)
    z64 = sm.start_normals(key, (4, 5), jnp.float64)
    assert z64.dtype == jnp.float64 and bool(jnp.all(z64.astype(jnp.float32) == sm.start_normals(key, (4, 5), jnp.float32)))


def test_a_run_folder_keeps_one_precision_and_its_resolved_solver_settings(tmp_path):
    """The resolved config names the tolerances the solver uses (the precision's defaults, not ``None``) and the
    precision; both enter the digest. A folder computed in one precision refuses a rerun in the other (clear
    message, no chunk reused or mixed), and a config asking for another precision than the process is refused."""
    from dynsim.sweeps import _config

    raw = small(grid__eta=[0.05, 0.1], grid__sigma2=[0.0])
    cfg = load_config(raw)
    assert cfg.raw["precision"] == "float64"
    assert (cfg.raw["solve"]["rtol"], cfg.raw["solve"]["atol"]) == (ds.solvers.DEFAULTS.rtol64,
                                                                    ds.solvers.DEFAULTS.atol64)
    assert "rtol = " in _config.to_toml(cfg.raw) and "None" not in _config.to_toml(cfg.raw)
    f32 = load_config(raw | {"precision": "float32"})
    assert f32.raw["solve"]["rtol"] == ds.solvers.DEFAULTS.rtol32 and f32.digest() != cfg.digest()
    assert load_config(small(solve__rtol=1e-9, grid__eta=[0.05, 0.1], grid__sigma2=[0.0])).digest() != cfg.digest()
    store.prepare_run(tmp_path / "r", f32)  # a float32 run's folder
    with pytest.raises(FileExistsError, match="holds a float32 run and this one is float64.*with --float32"):
        run_sweep(cfg, tmp_path / "r", progress=False, log=lambda *a: None)
    with pytest.raises(ConfigError, match="precision = 'float32' but this process computes in float64"):
        run_sweep(f32, tmp_path / "s", progress=False, log=lambda *a: None)
    with pytest.raises(ConfigError, match="precision must be one of"):
        load_config(raw | {"precision": "float16"})


def test_failure_counts_cover_reused_chunks_and_failed_cells_are_not_drawn(tmp_path):
    """``failed`` in the metadata counts every chunk of the run, so a rerun that reuses all chunks, or a resume that
    recomputes one, reports the same failures as the first run; a phase diagram leaves failed configurations out
    (NaN cells, drawn grey) and warns instead of showing them as "not collapsed"."""
    import warnings

    from dynsim.sweeps import phase_data, phase_diagram

    raw = small(solve__max_steps=3, grid__eta=[0.05, 0.1], grid__sigma2=[0.0, 0.5], run__chunk_size=1,
                run__on_failure="flag")
    cfg = load_config(raw)
    out = tmp_path / "r"
    first = run_sweep(cfg, out, progress=False, log=lambda *a: None)
    assert first["failed"] == {"MAX_STEPS": 4}
    assert run_sweep(cfg, out, progress=False, log=lambda *a: None)["failed"] == {"MAX_STEPS": 4}  # all reused
    store.chunk_path(out, 2).unlink()
    again = run_sweep(cfg, out, progress=False, log=lambda *a: None)
    assert again["chunks_computed"] == 1 and again["failed"] == {"MAX_STEPS": 4}
    res = load(out)
    _, _, Z = phase_data(res, "sigma2", "eta")
    assert np.all(np.isnan(Z))  # every configuration failed: no cell is a result
    with pytest.warns(RuntimeWarning, match="4 of 4 configurations failed to solve"):
        phase_diagram(res, "sigma2", "eta")
    ok = load_config(small(grid__eta=[0.05, 0.1], grid__sigma2=[0.0], run__chunk_size=1))
    run_sweep(ok, tmp_path / "ok", progress=False, log=lambda *a: None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        phase_diagram(load(tmp_path / "ok"), "sigma2", "eta")


def test_interrupts_and_unusable_folders_end_in_one_line(tmp_path, capsys, monkeypatch):
    """Ctrl-C mid-sweep leaves the written chunks and the status "interrupted" (the same command resumes); the
    CLI prints one line and exits 130. An --out that cannot be a folder ends with exit code 2 and one line naming
    it, no traceback."""
    import dynsim.sweeps as sweeps

    cfg = load_config(small(grid__eta=[0.05, 0.1], grid__sigma2=[0.0, 0.5], run__chunk_size=1))
    out = tmp_path / "r"

    def stop(k, n):
        if n == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(cfg, out, progress=False, log=lambda *a: None, on_chunk=stop)
    meta = json.loads((out / store.metadata_name(None)).read_text())
    assert meta["status"] == "interrupted" and meta["chunks_computed"] == 2
    assert run_sweep(cfg, out, progress=False, log=lambda *a: None)["chunks_reused"] == 2

    path = tmp_path / "s.toml"
    path.write_text(to_toml(small(grid__eta=[0.1], grid__sigma2=[0.0])))
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert main(["sweep", str(path), "--out", str(blocker / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a_file" in err and "Traceback" not in err

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweeps, "run_sweep", interrupted)
    assert main(["sweep", str(path), "--out", str(tmp_path / "i"), "--quiet"]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "interrupted" in err and "resume" in err


def test_component_options_left_to_the_precision_round_trip():
    """A components sweep with the exact cosine expectation (its rule's size is None: chosen by the precision,
    which the config records) writes a config.toml that loads back to the same sweep."""
    from dynsim.sweeps._config import to_toml

    raw = {"name": "exact", "model": {"kind": "modes", "loss": "cosine", "expectation": "gaussian_exact",
                                      "target": "online", "predictor": {"kind": "power", "input": "WWt"}},
           "grid": {"sigma2": [0.1]}}
    cfg = load_config(raw)
    again = load_config(__import__("tomllib").loads(to_toml(cfg.raw)))
    assert again.digest() == cfg.digest() and cfg.model["expectation"] == {"kind": "gaussian_exact"}
