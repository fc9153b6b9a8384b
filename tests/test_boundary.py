"""Boundary searches: bisection along rays against Tian et al.'s Obs. 5 closed form and a grid sweep, folds of fixed
points from their defining equations, flags, run folders and the command line (docs/guide/boundaries.md)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dynsim as ds
from dynsim import cli, sweeps
from dynsim.sweeps import Flag
from dynsim.eigenmodes import ModeState
from dynsim.sweeps._runner import ChunkRunner, recipe_for

SIGMA2 = [0.0, 0.5, 1.0, 2.0]
# Fixed target ratio tau = 1 (SimSiam-like), one mode started above p*_+ on the parabola (w = w_p = 1, alpha_p = 1).
# Just above eta_c the mode collapses after a bottleneck passage of about pi / (p_m sqrt(lambda_s delta)),
# p_m = 1/(2 lambda_s) (docs/theory/tian2021.md#bottleneck); with delta = r eta_c = r / (4 lambda_s) that is
# 4 pi lambda_s / sqrt(r), which reaches t1 = 1e6 at r = 1.4e-9 on the slowest ray (lambda_s = 3): "collapsed by t1"
# switches within 1.5e-9 of eta_c (measured), below the 1e-8 asserted.
TIAN = {"model": {"kind": "tian_modes", "target": "fixed_tau", "n_modes": 1},
        "params": {"tau": 1.0, "w0": 1.0, "wp0": 1.0},
        "solve": {"t1": 1e6, "saves": 2, "rtol": 1e-10, "atol": 1e-12, "max_steps": 2_000_000},
        "grid": {"sigma2": SIGMA2},
        "boundary": {"parameter": "eta", "bracket": [0.0, 0.5], "rtol": 1e-9}}


def _eta_c(sigma2, tau=1.0):
    """Tian et al. 2021, Obs. 5: eta_c = tau^2 / (4 (1 + sigma^2)) (docs/theory/tian2021.md#eq-16)."""
    return tau**2 / (4 * (1 + np.asarray(sigma2)))


@pytest.fixture(scope="module")
def tian_search():
    return sweeps.find_boundary(TIAN)


def test_obs5_boundary_from_trajectories_to_1e8(tian_search):
    """Bisection of "collapsed by t1" along 4 rays in sigma^2 in [0, 2] recovers eta_c to 1e-8 relative; every ray
    has one switch, with survival below it."""
    s = tian_search.summaries
    np.testing.assert_array_equal(s["flag"], Flag.OK)
    np.testing.assert_array_equal(s["below"], False)
    np.testing.assert_allclose(s["boundary"], _eta_c(SIGMA2), rtol=1e-8)
    assert np.all(s["upper"] - s["lower"] <= 1e-9 * s["upper"])


def test_bottleneck_passage_time_near_the_fold():
    """Just above eta_c the collapse is delayed by the bottleneck at p_m = tau/(2 lambda_s): the passage takes
    pi / (p_m sqrt(lambda_s delta)) (docs/theory/tian2021.md#bottleneck), so the collapse times at two small
    delta differ by pi / (p_m sqrt(lambda_s)) (delta_1^-1/2 - delta_2^-1/2), the rest of the path cancelling; to 1 %
    (the next order is O(1) in the times, against differences of about 1e4 here)."""
    ls = 1.5  # sigma^2 = 0.5
    p_m, eta_c = 1 / (2 * ls), 1 / (4 * ls)
    deltas = np.array([1e-7, 4e-7])
    cfg = sweeps.load_config({k: v for k, v in TIAN.items() if k not in ("grid", "boundary")}
                             | {"params": TIAN["params"] | {"sigma2": 0.5},
                                "zip": {"eta": (eta_c + deltas).tolist()}})
    t = ChunkRunner(cfg)(0)["collapse_time"]
    expected = np.pi / (p_m * np.sqrt(ls)) * (deltas[0] ** -0.5 - deltas[1] ** -0.5)
    np.testing.assert_allclose(t[0] - t[1], expected, rtol=1e-2)


def test_fold_of_fixed_points_is_the_trajectory_boundary(tian_search):
    """The same boundary from the fixed-point conditions (F = 0, J v = 0 by Newton from the trajectory's end state
    on the surviving side): eta_c to 1e-12. The bisection's bracket holds the fold shifted by the finite horizon:
    "collapsed by t1" switches where the bottleneck passage 4 pi lambda_s / sqrt(r) (the comment on TIAN) equals t1,
    at eta_c (1 + r), r = (4 pi lambda_s / t1)^2 (0.16e-9 to 1.4e-9 on these rays, brackets 1e-9 wide)."""
    folds = sweeps.fold_boundary(tian_search.config, tian_search)
    assert folds["ok"].all()
    np.testing.assert_allclose(folds["fold"], _eta_c(SIGMA2), rtol=1e-12)
    s = tian_search.summaries
    shifted = folds["fold"] * (1 + (4 * np.pi * (1 + np.asarray(SIGMA2)) / TIAN["solve"]["t1"]) ** 2)
    assert np.all((s["lower"] - 1e-12 <= shifted) & (shifted <= s["upper"] + 1e-12))


def test_fold_derivative_matches_closed_form():
    """d eta_c / d sigma^2 = -tau^2 / (4 (1 + sigma^2)^2) (Obs. 5 differentiated, docs/theory/tian2021.md#bottleneck),
    from the fold's extended system by the implicit-function theorem (optimistix), forward and reverse, to 1e-8, at
    sigma^2 = 0, 0.7 and 2 (one compiled program: the values are traced)."""
    cfg = sweeps.load_config({k: v for k, v in TIAN.items() if k not in ("grid", "boundary")})
    adapter = recipe_for(cfg).model
    key = jax.random.PRNGKey(0)
    fixed = {k: jnp.asarray(v) for k, v in cfg.fixed.items()}

    def guess(s2):  # near where p*_- and p*_+ merge, p_m = 1/(2(1 + sigma^2)); on the parabola w = w_p = p
        pm = 1 / (2 * (1 + s2))
        return ModeState(jnp.atleast_1d(pm * 1.01), jnp.atleast_1d(pm * 0.99), jnp.atleast_1d(pm))

    model, _, args = adapter.field(fixed | {"sigma2": 0.5}, key)
    active = sweeps.active_coordinates(model, guess(0.5), args)
    assert active == (0, 1)  # the target tau * w is not read by the field: left out of the system

    def eta_c(s2, start):
        return sweeps.fold_point(adapter, fixed | {"sigma2": s2}, "eta", 0.9 / (4 * (1 + start)), guess(start), key,
                                 active).x

    value = jax.jit(eta_c)
    forward = jax.jit(jax.jacfwd(eta_c))
    reverse = jax.jit(jax.grad(eta_c))
    for sigma2 in (0.0, 0.7, 2.0):
        s2 = jnp.asarray(sigma2)
        exact = -1 / (4 * (1 + sigma2) ** 2)
        np.testing.assert_allclose(float(value(s2, s2)), _eta_c(sigma2), rtol=1e-12)
        np.testing.assert_allclose(float(forward(s2, s2)), exact, rtol=1e-8)
        np.testing.assert_allclose(float(reverse(s2, s2)), exact, rtol=1e-8)


# An EMA target started at zero (Tian's tau(0) = 0), beta = 0.5: no closed form gives this boundary.
EMA = {"model": {"kind": "tian_modes", "target": "ema", "n_modes": 1},
       "params": {"beta": 0.5, "w0": 0.8, "wp0": 0.8, "tau0": 0.0},
       "solve": {"t1": 2000.0, "saves": 2, "rtol": 1e-10, "atol": 1e-12},
       "metrics": {"collapse": "all"}}


def test_ema_boundary_agrees_with_a_grid_sweep():
    """The bisected EMA-target boundary (rtol 1e-6) lies, on every ray, between the last surviving and the first
    collapsed eta of a grid sweep of the same configuration (spacing 0.0025). It is at most the fold eta_c (an EMA
    target's fixed points have tau = 1, so none survives above it) up to the finite-time allowance: a bottleneck of
    pi / (p_m sqrt(lambda_s delta)) must fit in t1 = 2000, delta <= 2e-5 = 1.6e-4 eta_c at sigma^2 = 1."""
    rays = [0.0, 1.0]
    res = sweeps.find_boundary(EMA | {"grid": {"sigma2": rays},
                                        "boundary": {"parameter": "eta", "bracket": [0.0, 0.3], "rtol": 1e-6}})
    s = res.summaries
    np.testing.assert_array_equal(s["flag"], Flag.OK)
    etas = np.linspace(0.0, 0.3, 121)
    cfg = sweeps.load_config(EMA | {"grid": {"sigma2": rays, "eta": etas.tolist()}, "run": {"chunk_size": 256}})
    collapsed = ChunkRunner(cfg)(0)["collapsed"].reshape(len(rays), etas.size)
    for i in range(len(rays)):
        first = np.argmax(collapsed[i])
        assert collapsed[i, first:].all() and not collapsed[i, :first].any()  # one switch on the grid too
        assert etas[first - 1] <= s["boundary"][i] <= etas[first]
    assert np.all(s["boundary"] < _eta_c(rays) * (1 + 1e-3))


EMA_CURVE = EMA | {"grid": {"sigma2": [0.0, 1.0, 2.0]},
                   "boundary": {"parameter": "eta", "bracket": [0.0, 0.3], "rtol": 1e-6}}


@pytest.fixture(scope="module")
def ema_curve():
    return sweeps.trace_boundary(EMA_CURVE, bend=1e-3)


def test_trace_boundary_refines_where_the_curve_bends_and_agrees_with_independent_rays(ema_curve):
    """Continuation of the EMA-target boundary over sigma^2 in [0, 2] from three anchors: rays are added where the
    curve bends until every point lies within `bend` of its neighbours' chord, more of them where the curve is more
    curved (small sigma^2); every added ray is bracketed from its neighbours, and its boundary equals that of an
    independent search of the same sigma^2 from the whole bracket (the criterion is deterministic, so the two final
    brackets overlap: their midpoints differ by at most the sum of their widths)."""
    from dynsim.sweeps._continuation import _deviations

    bend, cfg, c = 1e-3, EMA_CURVE, ema_curve
    assert c["axis"] == "sigma2" and c["parameter"] == "eta"
    np.testing.assert_array_equal(c["flag"], Flag.OK)
    assert np.all(np.diff(c["s"]) > 0) and c["s"].size > 3
    np.testing.assert_array_equal(c["warm"], c["round"] > 0)
    assert np.all(np.nan_to_num(_deviations(c["s"], c["boundary"], np.ones(c["s"].size, bool))) <= bend)
    assert np.sum(c["s"] < 1.0) > np.sum(c["s"] > 1.0)  # the boundary bends most at small sigma^2
    assert c["n_evaluations"][c["warm"]].mean() < c["n_evaluations"][~c["warm"]].mean()
    added = c["s"][c["warm"]]
    independent = sweeps.find_boundary(cfg | {"grid": {"sigma2": added.tolist()}}).summaries
    width = (c["upper"] - c["lower"])[c["warm"]] + independent["upper"] - independent["lower"]
    assert np.all(np.abs(c["boundary"][c["warm"]] - independent["boundary"]) <= width)


def test_continuation_widens_a_missed_bracket_and_finds_where_the_curve_ends():
    """A synthetic criterion c = x > f(s) (no solves): f jumps at s = 0.55, so the chord's guess at s = 0.75 misses
    and the warm bracket is widened until it holds the switch; above s = 1.2 the boundary leaves the bracket
    (NO_SWITCH), and the interval where it ends is searched from scratch. Every found boundary equals f to the
    tolerance."""
    def f(s):
        return np.where(s < 0.55, 0.2 + 0.1 * s, 0.47) + np.where(s > 1.2, 1.0, 0.0)

    at_075 = []

    def evaluate(s, x):
        s, x = np.asarray(s), np.asarray(x)
        at_075.extend(x[s == 0.75])
        return x > f(s), np.ones(len(s), bool)

    c = sweeps.continue_boundary(evaluate, [0.0, 0.25, 0.5, 1.0, 1.5], 0.0, 0.6, rtol=0.0, atol=1e-9, bend=1e-3,
                                 max_rounds=3)
    found = c["flag"] == Flag.OK
    np.testing.assert_allclose(c["boundary"][found], f(c["s"][found]), atol=1e-9)
    np.testing.assert_array_equal(c["flag"][~found], Flag.NO_SWITCH)
    assert np.all(c["s"][~found] > 1.2) and np.all(c["s"][found] < 1.2)
    # s = 0.75 is added next to s = 0.5, where the chord misses by 0.057: its first bracket, around the chord's
    # 0.36, lies below the boundary 0.47 (the criterion is the same at both ends), the widened one holds it
    at = c["s"] == 0.75
    first, second = at_075[:2], at_075[2:4]
    assert c["warm"][at] and max(first) < 0.47 < second[1] and second[0] < first[0]
    assert c["n_evaluations"][at] == len(at_075)
    assert np.any(~c["warm"] & (c["round"] > 0))  # a ray between a found and a missing boundary, from scratch
    with pytest.raises(ValueError, match="anchor"):
        sweeps.continue_boundary(evaluate, [0.5], 0.0, 0.6)
    with pytest.raises(ValueError, match="margin"):
        sweeps.continue_boundary(evaluate, [0.0, 1.0], 0.0, 0.6, margin=0.0)
    with pytest.raises(sweeps.ConfigError, match="one swept parameter"):
        sweeps.trace_boundary(EMA | {"grid": {"sigma2": [0.0, 1.0], "w0": [0.8, 0.9]}, "params": {"beta": 0.5},
                                     "boundary": {"parameter": "eta", "bracket": [0.0, 0.3]}})


def test_cli_boundary_trace(tmp_path, ema_curve):
    """`dynsim boundary trace CONFIG` writes the curve (the same arrays as `trace_boundary`), the resolved config and
    the picture; a config with two axes is refused by name."""
    from dynsim.sweeps._config import to_toml

    path = tmp_path / "ema.toml"
    path.write_text(to_toml(sweeps.load_config(EMA_CURVE).raw))
    out = tmp_path / "curve"
    assert cli.main(["boundary", "trace", str(path), "--bend", "1e-3", "--quiet", "--out", str(out)]) == 0
    with np.load(out / "curve.npz") as d:
        for key in sweeps.CURVE_KEYS:
            np.testing.assert_array_equal(d[key], ema_curve[key], err_msg=key)
        assert str(d["axis"]) == "sigma2" and "config_digest" in str(d["metadata"])
    assert (out / "curve.png").exists() and (out / "config.toml").exists()
    two = tmp_path / "two.toml"
    two.write_text(to_toml(sweeps.load_config(EMA_CURVE | {"grid": {"sigma2": [0.0, 1.0], "w0": [0.8, 0.9]},
                                                           "params": {"beta": 0.5}}).raw))
    assert cli.main(["boundary", "trace", str(two), "--quiet", "--out", str(tmp_path / "no")]) == 2


def test_cosine_weight_decay_shrinks_the_representation_exactly():
    """The cosine loss is invariant to the online weights' scale, so with weight decay eta the flow has
    sum_m c_m(t) = sum_m c_m(0) exp(-2 eta t) (docs/theory/halvagal2023.md#cosine-weight-decay): the per-mode model
    with the gradient through the target (the online network) and the network's expected-gradient flow with an EMA
    target, to 1e-10 relative over t in [0, 20] (rk45 at rtol 1e-11: the identity is exact, the tolerance is the
    integration's)."""
    from dynsim.networks import NetParams, SSLNet, ViewData, flow

    eta = 0.05
    data = ds.ModeData(lambda_s=jnp.array([1.5, 1.2, 0.9]), lambda_d=jnp.array([1.0, 0.6, 0.3]))
    model = ds.SSLModes(loss="cosine", target="online", stop_gradient=False, predictor="trainable")
    y0 = model.initial_state(jnp.array([0.8, 0.5, 0.3]))
    sol = ds.solve(model, y0, (ds.TianParams(eta=eta), data), 20.0, saveat=11, method="rk45", rtol=1e-11,
                   atol=1e-13)
    total = np.sum(np.asarray(sol.ys.w) ** 2, axis=-1)
    np.testing.assert_allclose(total, total[0] * np.exp(-2 * eta * np.asarray(sol.ts)), rtol=1e-10)
    rng = np.random.default_rng(0)
    W0 = jnp.asarray(rng.standard_normal((3, 5)) * 0.4)
    net = SSLNet(loss="cosine", predictor="trainable", target="ema")
    args = (NetParams(wd=eta, beta=0.5, wd_p=0.01), ViewData.isotropic(5, 0.5))
    y0 = net.initial_state(W0, W_p=jnp.eye(3) + 0.1 * jnp.asarray(rng.standard_normal((3, 3))), W_a=0.9 * W0,
                           args=args)
    sol = flow(net, y0, args, 20.0, saveat=11, method="rk45", rtol=1e-11, atol=1e-13)
    total = np.sum(np.asarray(sol.ys.W) ** 2, axis=(-1, -2))
    np.testing.assert_allclose(total, total[0] * np.exp(-2 * eta * np.asarray(sol.ts)), rtol=1e-10)


def test_cosine_boundary_is_a_finite_time_effect():
    """Under the cosine loss every weight decay collapses the representation, so "collapsed by t1" (every
    c_m <= theta) switches between ln(tr C0 / (M theta)) / (2 t1) and ln(tr C0 / theta) / (2 t1)
    (docs/theory/halvagal2023.md#cosine-weight-decay), for any predictor rate: one ray, 2 modes, a trained predictor,
    tr C0 = 2 w0^2, theta = 1e-2, t1 = 50."""
    w0, theta, t1, M = 0.8, 1e-2, 50.0, 2
    cfg = {"model": {"kind": "ssl_modes", "loss": "cosine", "target": "ema", "predictor": "trainable", "n_modes": M},
           "params": {"w0": w0, "wp0": 0.8, "tau0": 0.5, "beta": 0.5, "sigma2": 0.5, "data_decay": 1.0},
           "solve": {"t1": t1, "saves": 2, "rtol": 1e-8, "atol": 1e-10},
           "metrics": {"collapse_threshold": theta},
           "boundary": {"parameter": "eta", "bracket": [0.01, 0.1], "rtol": 1e-6, "scan": 3}}
    s = sweeps.find_boundary(cfg).summaries
    np.testing.assert_array_equal(s["flag"], Flag.OK)
    C0 = M * w0**2
    assert np.all(np.log(C0 / (M * theta)) / (2 * t1) <= s["lower"])
    assert np.all(s["upper"] <= np.log(C0 / theta) / (2 * t1))


def test_bisect_rays_flags():
    """Synthetic criteria: a step at x_i (OK, to the tolerance), none in the bracket (NO_SWITCH), two switches
    (SEVERAL: the first is refined), a failed solve (FAILED) and too few iterations (NOT_CONVERGED)."""
    steps = np.array([0.3, 2.0, 0.2, 0.6, 0.45])

    def evaluate(x):
        c = x > steps
        c[2] = 0.2 < x[2] < 0.7  # switches at 0.2 and back at 0.7
        ok = np.ones(5, bool)
        ok[3] = x[3] < 0.5  # the solve fails above 0.5 on ray 3
        return c, ok

    out = sweeps.bisect_rays(evaluate, 5, 0.0, 1.0, scan=11, rtol=1e-10)
    np.testing.assert_array_equal(out["flag"], [Flag.OK, Flag.NO_SWITCH, Flag.SEVERAL, Flag.FAILED, Flag.OK])
    np.testing.assert_allclose(out["boundary"][[0, 2, 4]], steps[[0, 2, 4]], rtol=1e-9)
    assert np.isnan(out["boundary"][1]) and not out["below"][1]
    short = sweeps.bisect_rays(evaluate, 5, 0.0, 1.0, scan=11, rtol=1e-10, max_iter=3)
    assert short["flag"][0] == Flag.NOT_CONVERGED and short["upper"][0] - short["lower"][0] == pytest.approx(0.1 / 8)
    logged = sweeps.bisect_rays(evaluate, 5, 0.01, 1.0, scan=5, log=True, rtol=1e-10)
    np.testing.assert_allclose(logged["boundary"][0], 0.3, rtol=1e-9)


def test_boundary_config_errors():
    """The [boundary] table is validated by name before anything runs."""
    base = {"model": {"kind": "tian_modes", "n_modes": 1}, "grid": {"sigma2": [0.0, 1.0]}}
    cases = [({"parameter": "nope", "bracket": [0, 1]}, "boundary.parameter"),
             ({"parameter": "sigma2", "bracket": [0, 1]}, "also swept"),
             ({"parameter": "eta", "bracket": [1, 0]}, "low < high"),
             ({"parameter": "eta", "bracket": [0, 1], "criterion": "x"}, "boundary.criterion"),
             ({"parameter": "eta", "bracket": [0, 1], "log": True}, "above 0"),
             ({"parameter": "eta", "bracket": [0, 1], "rtol": 0, "atol": 0}, "not both 0"),
             ({"parameter": "eta", "bracket": [-1, 1]}, "bad parameter values")]
    for table, words in cases:
        with pytest.raises(sweeps.ConfigError, match=words):
            sweeps.load_config(base | {"boundary": table})
    with pytest.raises(sweeps.ConfigError, match="both fixed"):
        sweeps.load_config(base | {"params": {"eta": 0.1}, "boundary": {"parameter": "eta", "bracket": [0, 1]}})
    with pytest.raises(sweeps.ConfigError, match="no \\[boundary\\]"):
        sweeps.find_boundary(base)


CLI_TOML = """
name = "cli_boundary"
[model]
kind = "tian_modes"
target = "fixed_tau"
n_modes = 1
[params]
w0 = 1.0
wp0 = 1.0
[solve]
t1 = 2000.0
saves = 2
[grid]
sigma2 = [0.0, 1.0, 2.0]
[boundary]
parameter = "eta"
bracket = [0.0, 0.5]
rtol = 1e-4
"""


def test_cli_boundary_run_resume_and_plot(tmp_path, capsys):
    """dynsim boundary: --dry-run, a run folder (config, metadata, chunks) loaded by dynsim.sweeps.load, resume
    (nothing recomputed), and dynsim boundary plot with the fold; sweep and boundary refuse each other's configs."""
    cfg = tmp_path / "b.toml"
    cfg.write_text(CLI_TOML)
    run = tmp_path / "run"
    assert cli.main(["boundary", str(cfg), "--dry-run"]) == 0
    assert "3 ray(s)" in capsys.readouterr().out
    assert cli.main(["boundary", str(cfg), "--out", str(run), "--quiet"]) == 0
    res = sweeps.load(run)
    np.testing.assert_allclose(res.summaries["boundary"], _eta_c([0.0, 1.0, 2.0]), rtol=2e-3)  # t1 = 2000 only
    assert cli.main(["boundary", str(cfg), "--out", str(run), "--quiet"]) == 0
    assert "0 block(s) computed, 1 reused" in capsys.readouterr().out
    assert cli.main(["boundary", "plot", str(run), "--fold"]) == 0
    assert (run / "boundary.png").is_file() and (run / "fold.npz").is_file()
    np.testing.assert_allclose(np.load(run / "fold.npz")["fold"], _eta_c([0.0, 1.0, 2.0]), rtol=1e-10)
    plots = tmp_path / "plots"  # a new folder: made before anything is written into it
    assert cli.main(["boundary", "plot", str(run), "--fold", "--out", str(plots)]) == 0
    assert (plots / "boundary.pdf").is_file() and (plots / "fold.npz").is_file()
    assert cli.main(["sweep", str(cfg), "--out", str(tmp_path / "s"), "--quiet"]) == 2
    assert "dynsim boundary" in capsys.readouterr().err
    # the packaged example is a boundary search: dynsim boundary describes and prints it, dynsim sweep refuses it
    assert cli.main(["boundary", "--example", "tian_obs5_boundary", "--dry-run"]) == 0
    assert "9 ray(s)" in capsys.readouterr().out
    assert cli.main(["boundary", "--example", "tian_obs5_boundary", "--print-example"]) == 0
    assert "[boundary]" in capsys.readouterr().out
    assert cli.main(["sweep", "--example", "tian_obs5_boundary", "--dry-run"]) == 2
    capsys.readouterr()
    plain = tmp_path / "plain.toml"
    plain.write_text(CLI_TOML.split("[boundary]")[0])
    assert cli.main(["boundary", str(plain), "--quiet"]) == 2
    assert "no [boundary] table" in capsys.readouterr().err


def test_guide_lists_every_criterion_and_flag():
    """The boundaries guide's tables name every criterion of dynsim.sweeps.CRITERIA and every Flag, and no other."""
    from pathlib import Path
    import re

    guide = (Path(__file__).resolve().parent.parent / "docs" / "guide" / "boundaries.md").read_text()
    rows = set(re.findall(r"^\| `(\w+)` \|", guide, re.M))
    assert rows == set(sweeps.CRITERIA) | {f.name for f in Flag}
