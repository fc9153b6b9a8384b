"""Derivatives through the dynamics: forward mode through the rk45 and rk4 loops, diffrax's reverse and forward
adjoints, event times by the implicit-function theorem, and a sweep's [sensitivity] table, each against a closed form
or central finite differences (docs/guide/sensitivities.md)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dynsim as ds
from dynsim import sweeps

LS = 1.5  # lambda_s = 1 + sigma^2 with sigma^2 = 0.5, lambda_d = 1, tau = 1, alpha_p = 1
ETA = 0.05
FIXED_TAU = ds.TianModes(target="fixed_tau")
DATA = ds.ModeData(lambda_s=jnp.array([LS]), lambda_d=jnp.array([1.0]))


def _dp_plus_deta(eta, ls=LS, tau=1.0):
    """d p*_+ / d eta from p*_+ = (tau + sqrt(tau^2 - 4 eta ls)) / (2 ls) (docs/theory/tian2021.md#bottleneck):
    -1 / sqrt(tau^2 - 4 eta ls)."""
    return -1.0 / math.sqrt(tau**2 - 4 * eta * ls)


def _final_wp(eta, method, **kw):
    params = ds.TianParams(alpha_p=1.0, beta=1.0, eta=eta, tau=1.0)
    y0 = FIXED_TAU.initial_state(jnp.array([1.0]), jnp.array([1.0]), params=params)
    sol = ds.solve(FIXED_TAU, y0, (params, DATA), 400.0, method=method, rtol=1e-12, atol=1e-14, **kw)
    return sol.ys.w_p[-1, 0]


@pytest.mark.parametrize("method,mode", [("rk45", "forward"), ("tsit5", "reverse"), ("tsit5", "forward"),
                                         ("rk4", "reverse")])
def test_fixed_point_derivative_matches_closed_form(method, mode):
    """From a start above p*_+ on the parabola the flow settles on p*_+ (rate >= 2 eta = 0.1, so e^-40 by t = 400);
    the derivative of the final w_p = p by eta is dp*_+/deta = -1/sqrt(1 - 4 eta ls) = -1.195229 to 1e-8."""
    kw = {"adjoint": "forward"} if method == "tsit5" and mode == "forward" else {}
    kw |= {"dt": 0.01} if method == "rk4" else {}
    f = lambda e: _final_wp(e, method, **kw)  # noqa: E731
    d = (jax.jacfwd if mode == "forward" else jax.grad)(f)(ETA)
    np.testing.assert_allclose(float(d), _dp_plus_deta(ETA), rtol=1e-8)


def test_float32_derivative_runs():
    """float32 inputs keep the solve and its tangent in float32. The tangent rides on the state's steps without its
    own error control, so at float32's default rtol 1e-5 it is right to about 1e-3 (measured 1.3e-3): asserted 5e-3."""
    def f(eta):
        p = ds.TianParams(1.0, 1.0, eta, 1.0)
        y0 = FIXED_TAU.initial_state(jnp.ones(1, jnp.float32), jnp.ones(1, jnp.float32), params=p)
        data = ds.ModeData(lambda_s=jnp.array([LS], jnp.float32), lambda_d=jnp.ones(1, jnp.float32))
        return ds.solve(FIXED_TAU, y0, (p, data), 200.0, method="rk45").ys.w_p[-1, 0]

    d = jax.jacfwd(f)(jnp.float32(ETA))
    assert d.dtype == jnp.float32
    np.testing.assert_allclose(float(d), _dp_plus_deta(ETA), rtol=5e-3)


# --- event times: the implicit-function theorem -------------------------------------------------------------
K = 1.01  # Halvagal et al.'s toy, sigma = 0.1: k = 1 + sigma^2


def _euclidean_escape_slope(lam0, k=K, alpha=1.0):
    """d t / d lambda_0 of the Euclidean escape time 2 alpha t = [-1/lam + k ln(lam/(1 - k lam))] from lam_0
    (docs/theory/halvagal2023.md#escape-derivatives): -(1/lam0^2 + k/lam0 + k^2/(1 - k lam0)) / (2 alpha)."""
    return -(1 / lam0**2 + k / lam0 + k**2 / (1 - k * lam0)) / (2 * alpha)


def _iso_escape_slope(lam0, k=K, alpha=1.0):
    """d t / d lambda_0 of the IsoLoss escape time 2 alpha t = ln((lam*/lam0 - 1)/(lam*/lam - 1)), lam* = 1/k
    (docs/theory/halvagal2023.md#escape-derivatives): -lam* / (2 alpha lam0 (lam* - lam0))."""
    star = 1 / k
    return -star / (2 * alpha * lam0 * (star - lam0))


def _half_reached(t, y, args):  # event: c = lambda (alpha = 1) rises through lambda*/2
    return 0.5 / K - y.w[0] ** 2


@pytest.mark.parametrize("iso", [False, True])
def test_escape_time_derivative_matches_closed_form(iso):
    """Time for lambda to rise from lambda_0 to lambda*/2 (an event), differentiated by lambda_0 through the rk45
    loop and the implicit-function theorem at the event: the closed forms' slopes to 1e-8."""
    m = ds.SSLModes(loss="euclidean", iso=iso)
    data = ds.ModeData.isotropic(K - 1, 1)
    lam0 = jnp.array([0.02, 0.08, 0.16])

    def times(lam):
        y0 = jax.tree.map(lambda x: x[:, None], m.initial_state(jnp.sqrt(lam)))
        sol = ds.solve_batch(m, y0, (ds.TianParams(), data), 200.0, batch_y0=True, batch_args=None,
                             event=_half_reached, rtol=1e-12, atol=1e-14, method="rk45")
        return sol.event_time

    _, slopes = jax.jvp(times, (lam0,), (jnp.ones_like(lam0),))  # independent problems: the diagonal at once
    exact = (_iso_escape_slope if iso else _euclidean_escape_slope)(np.asarray(lam0))
    np.testing.assert_allclose(np.asarray(slopes), exact, rtol=1e-8)


@pytest.mark.parametrize("method", ["rk45", "rk4"])
def test_collapse_time_derivative_vs_finite_differences(method):
    """Above eta_c every start collapses; the collapse event's time, differentiated by eta (implicit-function theorem,
    not through the bisection of the crossing), equals central differences of the event times to their error
    (h = 1e-5: O(h^2 t''') ~ 1e-7 relative, plus rtol / h ~ 1e-7)."""
    def t_c(eta):
        params = ds.TianParams(alpha_p=1.0, beta=1.0, eta=eta, tau=1.0)
        y0 = FIXED_TAU.initial_state(jnp.array([1.0]), jnp.array([1.0]), params=params)
        return ds.solve(FIXED_TAU, y0, (params, DATA), 400.0, method=method, rtol=1e-12, atol=1e-14, dt=0.005,
                        event=FIXED_TAU.collapse_event(1e-3)).event_time

    eta, h = 0.2, 1e-5
    fd = (t_c(eta + h) - t_c(eta - h)) / (2 * h)
    np.testing.assert_allclose(float(jax.jacfwd(t_c)(eta)), float(fd), rtol=2e-6)
    if method == "rk4":  # the lax.scan loop also runs in reverse mode
        np.testing.assert_allclose(float(jax.grad(t_c)(eta)), float(fd), rtol=2e-6)


def test_gradient_descent_map_is_differentiable():
    """The discrete GD map (a lax.scan) in forward and reverse mode: d(final w)/d(lr) equals central differences."""
    params = ds.TianParams(alpha_p=1.0, beta=1.0, eta=ETA, tau=1.0)
    y0 = FIXED_TAU.initial_state(jnp.array([0.8]), jnp.array([0.6]), params=params)

    def final(lr):
        return ds.gradient_descent(FIXED_TAU, y0, (params, DATA), lr, 200).ys.w[-1, 0]

    lr, h = 0.05, 1e-6
    fd = (final(lr + h) - final(lr - h)) / (2 * h)
    np.testing.assert_allclose(float(jax.jacfwd(final)(lr)), float(fd), rtol=1e-6)
    np.testing.assert_allclose(float(jax.grad(final)(lr)), float(fd), rtol=1e-6)


# --- a sweep's [sensitivity] table ----------------------------------------------------------------------------
def _sweep(config):
    from dynsim.sweeps._runner import ChunkRunner

    cfg = sweeps.load_config(config)
    return cfg, ChunkRunner(cfg)(0)


@pytest.mark.parametrize("mode,method", [("forward", "rk45"), ("reverse", "tsit5")])
def test_sweep_sensitivities_match_the_fixed_point(mode, method):
    """tian_modes with a fixed target, one mode started above p*_+ on the parabola: by t1 = 400 the final strength is
    s* = (p*_+)^2 (alpha_p = 1), so d s*/d eta = 2 p*_+ dp*_+/d eta and d s*/d sigma^2 = 2 p*_+ dp*_+/d lambda_s with
    dp*_+/d lambda_s = -(4 eta lambda_s / D + 2 tau + 2 D) / (4 lambda_s^2), D = sqrt(tau^2 - 4 eta lambda_s)
    (docs/theory/tian2021.md#eq-16), to 1e-8."""
    etas = np.array([0.02, 0.05, 0.1])
    cfg, out = _sweep({"model": {"kind": "tian_modes", "target": "fixed_tau", "n_modes": 1},
                       "params": {"tau": 1.0, "w0": 1.0, "wp0": 1.0, "sigma2": LS - 1},
                       "solve": {"t1": 400.0, "saves": 3, "rtol": 1e-12, "atol": 1e-14, "method": method},
                       "metrics": {"collapse": "none"}, "grid": {"eta": etas.tolist()},
                       "sensitivity": {"wrt": ["eta", "sigma2"], "outcomes": ["final_spectrum", "auc", "loss"],
                                       "mode": mode}})
    D = np.sqrt(1 - 4 * etas * LS)
    p = (1 + D) / (2 * LS)
    np.testing.assert_allclose(out["d_final_spectrum_d_eta"][:, 0], 2 * p * (-1 / D), rtol=1e-8)
    # the expected loss at the fixed point, w = w_p = p and target p (tau = 1): L = (ls p^4 - 2 p^3 + ls p^2) / 2
    # (Euclidean.mode_value), so dL/deta = (2 ls p^3 - 3 p^2 + ls p) dp*_+/deta
    np.testing.assert_allclose(out["loss"], (LS * p**4 - 2 * p**3 + LS * p**2) / 2, rtol=1e-9)
    np.testing.assert_allclose(out["d_loss_d_eta"], (2 * LS * p**3 - 3 * p**2 + LS * p) * (-1 / D), rtol=1e-8)
    dp_dls = -(4 * etas * LS / D + 2 + 2 * D) / (4 * LS**2)
    np.testing.assert_allclose(out["d_final_spectrum_d_sigma2"][:, 0], 2 * p * dp_dls, rtol=1e-8)
    # one mode: the AUC is 1 whatever the parameters, so its derivative is 0 to round-off (and not NaN)
    np.testing.assert_allclose(out["d_auc_d_eta"], 0.0, atol=1e-14)


NET = {"model": {"kind": "net", "n1": 4, "n2": 2, "loss": "euclidean", "predictor": "trainable",
                 "target": {"kind": "ema", "beta": 0.5}},
       "params": {"sigma2": 0.3, "init_scale": 0.8, "wp0": 0.4, "tau0": 0.5},
       "solve": {"t1": 20.0, "saves": 3, "rtol": 1e-12, "atol": 1e-14}, "metrics": {"collapse": "none"}}
GRASSMANN = {"model": {"kind": "grassmann", "loss": "contrastive", "flow": "oja", "d": 6, "h": 2},
             "params": {"noise": 0.3},
             "solve": {"t1": 3.0, "saves": 3, "rtol": 1e-12, "atol": 1e-14}, "metrics": {"collapse": "none"}}


# IsoLoss at mode level (its drives are closed forms, no stop_gradient inside): Halvagal et al.'s power predictor
ISO_MODES = {"model": {"kind": "ssl_modes", "loss": "euclidean", "iso": True, "predictor": "power", "target": "online",
                       "n_modes": 3},
             "params": {"w0": 0.6, "wp0": 0.6, "data_decay": 0.5, "sigma2": 0.3, "init_std": 0.1},
             "solve": {"t1": 5.0, "saves": 2, "rtol": 1e-12, "atol": 1e-14}, "metrics": {"collapse": "none"}}


@pytest.mark.parametrize("config,x,wrt", [(NET, "weight_decay", ["weight_decay", "sigma2"]),
                                          (GRASSMANN, "data_decay", ["data_decay"]), (ISO_MODES, "eta", ["eta"])],
                         ids=["net", "grassmann", "isoloss_modes"])
def test_sweep_sensitivities_match_finite_differences(config, x, wrt):
    """The network flow, the Grassmann flow and the mode-level IsoLoss have no closed form here: the forward-mode
    derivatives of the final spectrum, the AUC, the effective rank and (not Grassmann) the expected loss equal central differences over x +- h of the same sweep, to the
    differences' error (h = 1e-5: truncation h^2 f'''/6f' ~ 1e-8, solver rtol / h ~ 1e-7; asserted rtol 1e-6, atol 1e-9)."""
    h, x0 = 1e-5, 1.0 if x == "data_decay" else 0.05
    outcomes = ["final_spectrum", "auc", "effective_rank"] + ([] if config is GRASSMANN else ["loss"])
    sens = {"wrt": wrt, "outcomes": outcomes}
    # one configuration per sweep, so all three share configuration 0's key, hence the same random start
    lo, mid, hi = (_sweep(config | {"grid": {x: [v]}, "sensitivity": sens})[1] for v in (x0 - h, x0, x0 + h))
    for outcome in outcomes:
        fd = (hi[outcome][0] - lo[outcome][0]) / (2 * h)
        np.testing.assert_allclose(mid[sweeps.derivative_name(outcome, x)][0], fd, rtol=1e-6, atol=1e-9)
        assert all(np.all(np.isfinite(mid[sweeps.derivative_name(outcome, w)])) for w in wrt)


def test_sensitivity_config_errors():
    """Unknown parameters or outcomes, and reverse mode with the forward-only rk45 loop, are refused by name; the
    dry-run report names what will be differentiated."""
    base = {"model": {"kind": "tian_modes", "n_modes": 2}}
    report = sweeps.describe(sweeps.load_config(base | {"sensitivity": {"wrt": ["eta", "beta"]}}))
    assert "sensitivities (forward mode): d(final_spectrum, collapse_time, auc, effective_rank) / d(eta, beta)" in report
    for table, words in [({"wrt": ["nope"]}, "sensitivity.wrt"), ({"wrt": ["eta"], "outcomes": ["collapsed"]},
                                                                   "sensitivity.outcomes"),
                         ({"wrt": ["eta"], "mode": "reverse"}, "rk45"), ({"wrt": []}, "non-empty")]:
        with pytest.raises(sweeps.ConfigError, match=words):
            sweeps.load_config(base | {"sensitivity": table})
    with pytest.raises(sweeps.ConfigError, match="no expected loss"):
        sweeps.load_config({"model": {"kind": "grassmann"}, "sensitivity": {"wrt": ["noise"], "outcomes": ["loss"]}})
    # a network's IsoLoss defines its gradient through stop_gradient, which would silently drop parameter derivatives
    with pytest.raises(sweeps.ConfigError, match="IsoLoss"):
        sweeps.load_config({"model": {"kind": "network", "loss": "euclidean_iso", "predictor": "power"},
                            "sensitivity": {"wrt": ["wd"]}})
    # the exact cosine expectation has a custom reverse rule only
    with pytest.raises(sweeps.ConfigError, match="reverse"):
        sweeps.load_config({"model": {"kind": "ssl_modes", "loss": "cosine", "n_modes": 2},
                            "sensitivity": {"wrt": ["eta"]}})
    sweeps.load_config({"model": {"kind": "ssl_modes", "loss": "cosine", "n_modes": 2}, "solve": {"method": "tsit5"},
                        "sensitivity": {"wrt": ["eta"], "mode": "reverse"}})
