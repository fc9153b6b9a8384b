"""The component model family: one definition per concept at both levels.

* The eigenmode model that :func:`dynsim.models.reduce_to_modes` hands back equals the network flow restricted
  to aligned states, right-hand side against right-hand side (every second-moment loss x predictor x target
  combination that reduces; isotropic and non-isotropic commuting data; unequal weight decays).
* Each built-in loss's per-mode closed form equals the default mode form, the automatic differentiation of its
  per-sample network loss on the same per-mode nodes.
* A loss and a spectral predictor written here, outside the package, run at network level (flow, GD, SGD) and at
  mode level, and agree with closed forms derived by hand.
* Model parameters are traced leaves: new values do not recompile; ``vmap`` batches over them.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dynsim as ds
from dynsim import components as cp
from dynsim.compare import aligned_start
from dynsim.models import ModeState, Modes, NetState, Network, reduce_to_modes
from dynsim.networks import ViewData, train

N1, N2 = 6, 3
RHS_TOL = 1e-12  # one right-hand side in float64: round-off of a few matrix products


def _commuting_views(rng, isotropic: bool) -> ViewData:
    if isotropic:
        return ViewData.isotropic(N1, 0.4)
    Q = np.linalg.qr(rng.standard_normal((N1, N1)))[0]
    return ViewData(jnp.asarray((Q * np.linspace(0.5, 2.0, N1)) @ Q.T), jnp.asarray((Q * np.linspace(0.1, 0.6, N1)) @ Q.T))


def _aligned(rng, net: Network, data: ViewData):
    """An aligned start whose input directions are eigenvectors of the data moments (first N2 of them)."""
    _, V = np.linalg.eigh(np.asarray(data.input_moment) + 0.37 * np.asarray(data.noise_cov))
    U = np.linalg.qr(rng.standard_normal((N2, N2)))[0]
    w0 = np.array([0.4, 0.7, 1.1])
    W0 = (U * w0) @ V[:, :N2].T
    Wp0 = (U * np.array([0.3, -0.2, 0.9])) @ U.T if net.predictor.trainable else None
    return net.initial_state(W0, Wp0, 0.6 * W0 if isinstance(net.target, cp.EMA) else None, data), U, V[:, :N2]


def _network_rates(net: Network, y: NetState, data) -> NetState:
    """The flow's rates; for a closed form, the rate of the predictor it implies (the flow records W_p from W,
    so its rate is the derivative of the closed form along dW: the mode model's chain rule)."""
    dy = net(0.0, y, data)
    if net.closed_form:
        def closed(W):
            return net.predictor(*net.expected_moments(W, W, data))
        dy = dy._replace(W_p=jax.jvp(closed, (y.W,), (dy.W,))[1])
    return dy


def _to_modes(dy: NetState, U, V) -> ModeState:
    """Diagonals of the network rates in the aligned basis, and the largest off-diagonal entry."""
    dW, dWp, dWa = U.T @ np.asarray(dy.W) @ V, U.T @ np.asarray(dy.W_p) @ U, U.T @ np.asarray(dy.W_a) @ V
    off = max(np.max(np.abs(m - np.diag(np.diag(m)))) for m in (dW, dWp, dWa))
    return ModeState(np.diag(dW), np.diag(dWp), np.diag(dWa)), off


LOSSES = [cp.Euclidean(), cp.Euclidean(iso=True)]
PREDICTORS = [cp.Trainable(alpha_p=1.7), cp.Trainable(alpha_p=0.8, symmetric=True), cp.Identity(),
              cp.Power(power=0.5, eps=0.05, ridge=0.02, input="WWt"), cp.DirectPred(eps=0.1),
              cp.DirectPred(normalisation="code", input="WXWt"), cp.DirectSet(power=2.0, norm="frobenius")]
TARGETS = [cp.EMA(beta=0.7), cp.Online(), cp.Online(stop_gradient=False), cp.FixedTau(tau=0.8)]


def _valid(loss, predictor, target):
    return not loss.iso or (predictor.closed_form and target.stop_gradient)


COMBOS = [c for c in itertools.product(LOSSES, PREDICTORS, TARGETS) if _valid(*c)]


def test_mode_model_is_the_restricted_network_flow():
    """For every second-moment combination: Network rhs in the aligned basis == the reduced Modes rhs (1e-12),
    and the off-diagonal rates vanish (the flow keeps the state aligned). The data are non-isotropic commuting
    views (per-mode lambda_s, lambda_d differ); isotropic views are the special case checked through
    dynsim.compare in tests/test_compare.py."""
    rng = np.random.default_rng(3)
    data = _commuting_views(rng, isotropic=False)
    worst, worst_off = 0.0, 0.0
    for loss, predictor, target in COMBOS:
        net = Network(loss=loss, predictor=predictor, target=target, weight_decay=0.03, predictor_weight_decay=0.11)
        y0, U, V = _aligned(rng, net, data)
        modes, mdata, y0m = reduce_to_modes(net, y0, data)
        order = np.argsort(np.asarray(y0m.w))  # reduce_to_modes orders modes by ascending strength; so does w0
        got, off = _to_modes(_network_rates(net, y0, data), U, V)
        want = modes(0.0, y0m, mdata)
        for g, w in zip(got, want):
            worst = max(worst, float(np.max(np.abs(np.asarray(g) - np.asarray(w)[order]))))
        worst_off = max(worst_off, off)
    assert worst < RHS_TOL and worst_off < RHS_TOL, (worst, worst_off)
    assert len(COMBOS) >= 40


@pytest.mark.parametrize("loss,stop_gradient", [(cp.Euclidean(), True), (cp.Euclidean(), False),
                                                 (cp.Euclidean(iso=True), True), (cp.Cosine(), True),
                                                 (cp.Cosine(), False), (cp.Cosine(iso=True), True)])
def test_builtin_mode_forms_equal_the_autodiff_restriction(loss, stop_gradient):
    """Closed-form per-mode drives == AbstractLoss.mode_drives (autodiff of per_sample on the same nodes);
    IsoLoss is defined with the stop-gradient only."""
    rng = np.random.default_rng(1)
    M = 4
    w, w_bar, lam = (jnp.asarray(rng.uniform(0.3, 1.2, M)) for _ in range(3))
    if not stop_gradient:
        w_bar = w
    data = ds.ModeData(jnp.asarray(rng.uniform(1.2, 2.0, M)), jnp.asarray(rng.uniform(0.4, 1.0, M)))
    expectation = cp.SecondMoments() if loss.quadratic else cp.GaussianNodes(n_nodes=512, seed=2)
    got = loss.mode_drives(w, w_bar, lam, data, stop_gradient, expectation)
    want = cp.AbstractLoss.mode_drives(loss, w, w_bar, lam, data, stop_gradient, expectation)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12, atol=1e-14)
    if not loss.iso:  # the IsoLoss surrogate's predictor gradient is not used (its predictor is a closed form)
        np.testing.assert_allclose(got[1], want[1], rtol=1e-12, atol=1e-14)


# --- an extension written outside the package ------------------------------------------------------------
class ShrunkEuclidean(cp.AbstractLoss):
    r""":math:`\tfrac12\|p - z_2\|^2 + \tfrac\mu2\|z_1\|^2`: a second-moment loss with an output penalty.
    Per mode, :math:`E[\ell] = \tfrac12E(\lambda wu_1 - \bar wu_2)^2 + \tfrac\mu2 w^2\lambda_s`, so
    :math:`-\partial_wE[\ell] = \lambda r - \mu\lambda_s w` with :math:`r = \bar w\lambda_d - \lambda w\lambda_s`."""

    quadratic = True
    mu: float = 0.3

    def per_sample(self, z1, p, z2, W_p):
        return 0.5 * jnp.sum((p - z2) ** 2, axis=-1) + 0.5 * self.mu * jnp.sum(z1 * z1, axis=-1)


class Saturating(cp.AbstractSpectral):
    r""":math:`\lambda_m = c_m/(\kappa + c_m)`: a predictor that saturates on strong modes."""

    kappa: float = 0.5

    def eigenvalues(self, c):
        return c / (self.kappa + c)


def test_user_loss_has_the_hand_derived_mode_form():
    rng = np.random.default_rng(4)
    M = 5
    w, w_bar, lam = (jnp.asarray(rng.uniform(0.2, 1.0, M)) for _ in range(3))
    data = ds.ModeData(jnp.asarray(rng.uniform(1.1, 1.9, M)), jnp.asarray(rng.uniform(0.3, 1.0, M)))
    loss = ShrunkEuclidean(mu=0.3)
    dw, dlam = loss.mode_drives(w, w_bar, lam, data, True, cp.SecondMoments())
    r = w_bar * data.lambda_d - lam * w * data.lambda_s
    np.testing.assert_allclose(dw, lam * r - 0.3 * data.lambda_s * w, rtol=1e-13)
    np.testing.assert_allclose(dlam, r * w, rtol=1e-13)


@pytest.fixture(scope="module")
def user_setup():
    net = Network(loss=ShrunkEuclidean(mu=0.2), predictor=Saturating(kappa=0.5, input="WWt"), target=cp.EMA(beta=0.5),
                  weight_decay=0.01)
    data = ViewData.isotropic(N1, 0.3)
    W0, _, Wa0 = aligned_start(np.random.default_rng(0), N1, N2, [0.2, 0.5, 0.9], target_ratio=0.5)
    return net, net.initial_state(W0, None, Wa0, data), data


def _spectrum(W):
    W = np.asarray(W)
    return np.linalg.eigvalsh(W @ np.swapaxes(W, -1, -2))


def test_user_components_in_compare(user_setup):
    """``dynsim.compare.agreement`` takes the user-built network as it is: its expected-gradient flow and the
    eigenmode model of the same components agree to the solvers' tolerance (both dopri8 at rtol 1e-11)."""
    from dynsim.compare import agreement

    net, y0, data = user_setup
    assert agreement(net, y0, data, 2.0, n_saves=4).max_rel_error < 1e-9


def test_user_components_train_by_gd_and_sgd(user_setup):
    """GD converges to the flow at first order in the learning rate (halving lr halves the error against the
    eigenmode theory, which equals the flow: previous test); SGD at batch 4096 stays within its sampling noise."""
    net, y0, data = user_setup
    t1 = 2.0
    modes, mdata, y0m = reduce_to_modes(net, y0, data)
    theory = np.sort(np.asarray(ds.solve(modes, y0m, mdata, t1, method="dopri8", rtol=1e-11, atol=1e-13).final.w) ** 2)
    errs = [np.max(np.abs(_spectrum(train(net, y0, data, lr, int(t1 / lr)).final.W) - theory)) for lr in (0.02, 0.01)]
    assert 1.7 < errs[0] / errs[1] < 2.3, errs  # first order: Euler on the flow
    sgd = train(net, y0, data, 0.01, int(t1 / 0.01), batch=4096, seed=[0, 1])
    assert np.max(np.abs(_spectrum(sgd.final.W) - theory)) < 0.02  # O(sqrt(lr / batch)) noise


def test_user_components_run_at_mode_level_by_gradient_descent(user_setup):
    net, y0, data = user_setup
    modes, mdata, y0m = reduce_to_modes(net, y0, data)
    gd = ds.gradient_descent(modes, y0m, mdata, 0.01, 100, n_saves=2)
    assert gd.ok and np.all(np.isfinite(np.asarray(gd.ys.w)))


def test_model_parameters_are_traced():
    """Two weight decays, one compile; vmap over a component parameter inside jit."""
    from dynsim.solvers import _api as api

    data = ds.ModeData(jnp.full(3, 1.5), jnp.ones(3))
    y0 = Modes().initial_state(jnp.array([0.5, 0.6, 0.7]), jnp.full(3, 0.4))
    before = api._solve_jit._cache_size()
    for eta in (0.01, 0.02):
        ds.solve(Modes(weight_decay=eta), y0, data, 1.0, method="rk45")
    assert api._solve_jit._cache_size() - before == 1
    cfg = ds.solvers.solver_config("rk45")
    ts = jnp.array([1.0])

    def final_w(beta):
        model = Modes(target=cp.EMA(beta=beta))
        return ds.solvers.integrate(model, y0, data, 0.0, 1.0, ts, cfg).ys.w[-1]

    betas = jnp.array([0.1, 1.0])
    batched = jax.jit(jax.vmap(final_w))(betas)
    for i, b in enumerate(betas):
        np.testing.assert_allclose(batched[i], ds.solve(Modes(target=cp.EMA(beta=float(b))), y0, data, 1.0,
                                                        method="rk45").final.w, rtol=1e-12)


def test_component_errors_name_the_problem():
    with pytest.raises(ValueError, match="online target only"):
        cp.EMA(stop_gradient=False)
    with pytest.raises(ValueError, match="closed-form predictor"):
        Network(loss=cp.Euclidean(iso=True))
    with pytest.raises(ValueError, match="no eigenmode theory"):
        Modes(predictor=cp.NS())
    with pytest.raises(TypeError, match="loss must be an instance of AbstractLoss"):
        Modes(loss="euclidean")
    with pytest.raises(ValueError, match="EMA.beta"):
        Modes(target=cp.EMA(beta=-1.0)).check()
    with pytest.raises(ValueError, match="input"):
        cp.Power(input="nope")



def test_user_components_in_a_sweep(tmp_path):
    """A ``modes`` sweep names the user loss and predictor by import path and sweeps the loss's own parameter
    ``loss.mu`` (a field of the component, not a re-declared option) with ``weight_decay`` (the predictor's
    ``kappa`` fixed in [params]); every configuration equals a direct solve of the same model (the sweep runs rk45 at its default float64 tolerances, rtol 1e-8: agreement to 1e-7)."""
    from dynsim.sweeps import load, load_config, run_sweep
    from dynsim.sweeps._config import to_toml

    raw = {"name": "user", "model": {"kind": "modes", "n_modes": 3, "loss": "test_family:ShrunkEuclidean",
                                     "predictor": "test_family:Saturating", "target": "ema"},
           "params": {"target": {"beta": 0.5}, "predictor": {"kappa": 0.7}}, "grid": {"loss": {"mu": [0.0, 0.3]}, "weight_decay": [0.0, 0.05]},
           "solve": {"t1": 5.0, "saves": 3}, "metrics": {"collapse": "none"}, "run": {"chunk_size": 4}}
    cfg = load_config(raw)
    assert cfg.dims == ("loss.mu", "weight_decay") and cfg.fixed["predictor.kappa"] == 0.7
    assert load_config(tmp_path.joinpath("c.toml").write_text(to_toml(cfg.raw)) and tmp_path / "c.toml").raw == cfg.raw
    run_sweep(cfg, tmp_path / "run", progress=False, log=lambda *a: None)
    res = load(tmp_path / "run")
    data = ds.ModeData(jnp.ones(3), jnp.ones(3))  # sigma2 = 0, data_decay = 0
    for i, (mu, wd) in enumerate(zip(res.params["loss.mu"], res.params["weight_decay"])):
        model = Modes(loss=ShrunkEuclidean(mu=float(mu)), predictor=Saturating(kappa=0.7), target=cp.EMA(beta=0.5),
                      weight_decay=float(wd))
        y0 = model.initial_state(jnp.full(3, 0.5), None, jnp.zeros(3), data)
        want = np.sort(np.asarray(ds.solve(model, y0, data, 5.0, method="dopri8", rtol=1e-12, atol=1e-14).final.w) ** 2)
        np.testing.assert_allclose(np.sort(res.summaries["final_spectrum"][i]), want, rtol=1e-7, atol=1e-9)


def test_network_sweeps_of_components(tmp_path):
    """``kind = "net"``: (a) built-in components reproduce the option-string ``network`` kind configuration by
    configuration (same model, same key-derived start: to round-off, 1e-12); (b) the user loss at ``mu = 0`` is the
    Euclidean loss, so it reproduces (a), and ``mu = 0.3`` changes the result."""
    from dynsim.sweeps import load, load_config, run_sweep

    common = {"solve": {"t1": 5.0, "saves": 3}, "metrics": {"collapse": "none"}, "run": {"chunk_size": 2}}
    old = load_config({"name": "old", "model": {"kind": "network", "n1": 6, "n2": 3},
                       "params": {"beta": 0.5, "sigma2": 0.3}, "zip": {"wd": [0.0, 0.05], "wd_p": [0.0, 0.05]}} | common)
    new = load_config({"name": "new", "model": {"kind": "net", "n1": 6, "n2": 3, "predictor": "trainable"},
                       "params": {"target.beta": 0.5, "sigma2": 0.3}, "grid": {"weight_decay": [0.0, 0.05]}} | common)
    user = load_config({"name": "user", "model": {"kind": "net", "n1": 6, "n2": 3, "loss": "test_family:ShrunkEuclidean",
                                                   "predictor": "trainable"},
                        "params": {"target.beta": 0.5, "sigma2": 0.3, "weight_decay": 0.0},
                        "grid": {"loss.mu": [0.0, 0.3]}} | common)
    out = {}
    for cfg in (old, new, user):
        run_sweep(cfg, tmp_path / cfg.name, progress=False, log=lambda *a: None)
        out[cfg.name] = load(tmp_path / cfg.name).summaries["final_spectrum"]
    np.testing.assert_allclose(out["new"], out["old"], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(out["user"][0], out["old"][0], rtol=1e-12, atol=1e-14)
    assert np.max(np.abs(out["user"][1] - out["user"][0])) > 1e-3


def test_work_factor_and_preset_sweep_defaults():
    """Chunk sizing: the Euclidean per-mode form needs no nodes (work 1), the cosine node average does (its node
    count). The option-string sweep kinds map their parameter names to the component paths, and their tables'
    defaults equal the components' own defaults (one value per concept)."""
    from dynsim.sweeps._models import ADAPTERS

    assert Modes(expectation=cp.GaussianNodes(n_nodes=256)).rhs_work_factor == 1
    assert Modes(loss=cp.Cosine(), predictor=cp.Power(), target=cp.Online(),
                 expectation=cp.GaussianNodes(n_nodes=256)).rhs_work_factor == 256
    for kind in ("tian_modes", "ssl_modes", "network"):
        for options in ({}, {"target": "ema"}):
            adapter = ADAPTERS[kind](ode=ADAPTERS[kind].MODEL(**options))
            family = adapter.family_sweep()
            for name, path in adapter.NAMES.items():
                if path in family.PARAMS:
                    assert adapter.PARAMS[name] == family.PARAMS[path], (kind, name)
            for name, value in family.START.items():
                assert adapter.PARAMS[name] == value, (kind, name)


def test_expected_loss_of_the_mode_model_is_the_networks():
    """The expected loss (a sweep summary, differentiable) is one definition at both levels: for every
    second-moment combination the mode model's expected_loss at the reduced state equals the network's at the aligned
    start (1e-12; the Euclidean closed form of Euclidean.mode_value), and that closed form
    equals the generic value on the second-moment nodes. The cosine loss's exact two-radius value agrees between the
    levels too (1e-10)."""
    rng = np.random.default_rng(5)
    data = _commuting_views(rng, isotropic=False)
    for loss, predictor, target in COMBOS:
        net = Network(loss=loss, predictor=predictor, target=target, weight_decay=0.03)
        y0, _, _ = _aligned(rng, net, data)
        modes, mdata, y0m = reduce_to_modes(net, y0, data)
        value = float(modes.expected_loss(y0m, mdata))
        np.testing.assert_allclose(value, float(net.expected_loss(y0, data)), rtol=1e-12)
        w_bar = modes.target.in_loss(y0m.w, y0m.w_a)
        generic = cp.AbstractLoss.mode_value(modes.loss, y0m.w, w_bar, modes.predictor_eigenvalues(y0m, mdata), mdata,
                                             cp.SecondMoments())
        np.testing.assert_allclose(float(generic), value, rtol=1e-12)
    cos = Network(loss=cp.Cosine(), predictor=cp.Trainable(), target=cp.EMA(beta=0.5), expectation=cp.GaussianExact())
    iso = ViewData.isotropic(N1, 0.4)
    y0, _, _ = _aligned(rng, cos, iso)
    modes, mdata, y0m = reduce_to_modes(cos, y0, iso)
    np.testing.assert_allclose(float(modes.expected_loss(y0m, mdata)), float(cos.expected_loss(y0, iso)), rtol=1e-10)
