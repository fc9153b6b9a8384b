"""Parameter PyTrees, validation messages and the discrete <-> ODE unit conversions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dynsim as ds
from dynsim import units


def test_params_are_pytrees_with_float_leaves():
    p = ds.TianParams(alpha_p=1.5, beta=0.4, eta=0.01, tau=0.9)
    leaves, treedef = jax.tree.flatten(p)
    assert leaves == [1.5, 0.4, 0.01, 0.9]
    assert jax.tree.unflatten(treedef, leaves) == p
    doubled = jax.tree.map(lambda x: 2 * x, p)
    assert doubled.alpha_p == 3.0 and doubled.tau == 1.8
    batched = jax.vmap(lambda q: q.alpha_p * q.eta)(ds.TianParams(jnp.arange(3.0), jnp.ones(3), jnp.ones(3), jnp.ones(3)))
    np.testing.assert_allclose(batched, [0, 1, 2])


def test_isotropic_constructors():
    d = ds.ModeData.isotropic(0.5, n_modes=3)
    np.testing.assert_allclose(d.lambda_s, 1.5)
    np.testing.assert_allclose(d.sigma2, 0.5)
    m = ds.MomentData.isotropic(4, 0.25)
    np.testing.assert_allclose(m.X + m.Xp, 1.25 * np.eye(4))


@pytest.mark.parametrize("kw,match", [
    (dict(alpha_p=0.0), "alpha_p must be > 0"),
    (dict(alpha_p=-1.0), "alpha_p"),
    (dict(beta=-0.1), "beta must be >= 0"),
    (dict(eta=-1e-3), "eta"),
    (dict(tau=float("nan")), "tau must be finite"),
])
def test_tian_params_validation_names_the_parameter(kw, match):
    with pytest.raises(ValueError, match=match):
        ds.TianParams(**kw).validate()


def test_moment_data_validation():
    with pytest.raises(ValueError, match="MomentData.X must be symmetric"):
        ds.MomentData(X=np.array([[1.0, 0.5], [0.0, 1.0]]), Xp=np.eye(2)).validate()
    with pytest.raises(ValueError, match="MomentData.Xp must be positive semi-definite"):
        ds.MomentData(X=np.eye(2), Xp=-np.eye(2)).validate()
    with pytest.raises(ValueError, match="square"):
        ds.MomentData(X=np.ones((2, 3)), Xp=np.eye(2)).validate()
    with pytest.raises(ValueError, match="shape"):
        ds.MomentData(X=np.eye(2), Xp=np.eye(3)).validate()
    with pytest.raises(ValueError, match="lambda_s must be >= "):
        ds.MomentData.commuting(np.eye(2), [1.0, 0.5], [1.0, 1.0])


def test_unit_conversions_match_the_paper_example():
    """Tian et al. 2021: lr = 0.01, beta = 0.4 <-> EMA decay 0.996; eta_bar = lr * eta."""
    assert units.beta_from_ema_decay(0.996, 0.01) == pytest.approx(0.4, rel=1e-12)
    assert units.ema_decay_from_beta(0.4, 0.01) == pytest.approx(0.996, rel=1e-15)
    assert units.eta_from_step_shrink(4e-4, 0.01) == pytest.approx(0.04)
    assert units.eta_from_weight_decay(4e-4) == 4e-4
    assert units.alpha_p_from_lrs(0.3, 0.03) == pytest.approx(10.0)
    s = units.DiscreteSettings(lr=0.01, lr_predictor=0.02, ema_decay=0.996, weight_decay=4e-4)
    p = s.to_ode()
    assert (p.alpha_p, p.beta, p.eta) == (pytest.approx(2.0), pytest.approx(0.4), 4e-4)
    assert s.time(2000) == pytest.approx(20.0)


def test_unit_conversion_errors():
    with pytest.raises(ValueError, match="lr must be > 0"):
        units.beta_from_ema_decay(0.99, 0.0)
    with pytest.raises(ValueError, match="ema_decay"):
        units.beta_from_ema_decay(1.5, 0.01)
    with pytest.raises(ValueError, match="ema_decay"):
        units.ema_decay_from_beta(200.0, 0.01)
    with pytest.raises(ValueError, match="weight_decay"):
        units.eta_from_weight_decay(-1.0)


def test_import_does_not_flip_global_jax_flags_and_float32_path_runs():
    """Run in a fresh interpreter: importing dynsim keeps float32 default; a float32 solve works and reaches Eq. 16's
    p*+ = (1 + sqrt(0.7))/3 = 0.612220 (docs/theory/tian2021.md#eq-16) to float32's solver tolerance."""
    import os
    import subprocess
    import sys

    code = (
        "import jax, jax.numpy as jnp, dynsim as ds\n"
        "assert not jax.config.jax_enable_x64\n"
        "m = ds.TianModes(target='fixed_tau')\n"
        "p = ds.TianParams(alpha_p=1.0, eta=0.05, tau=1.0)\n"
        "y0 = m.initial_state(jnp.array([0.3, 1.0]), jnp.array([0.3, 1.0]), params=p)\n"
        "for meth in ('tsit5', 'rk4'):\n"
        "    sol = ds.solve(m, y0, (p, ds.ModeData.isotropic(0.5)), 400.0, method=meth, dt=0.05)\n"
        "    assert sol.ys.w.dtype == jnp.float32, sol.ys.w.dtype\n"
        "    pp = sol.final.w_p\n"
        "    assert abs(float(pp[0]) - 0.612220) < 1e-4 and abs(float(pp[1]) - 0.612220) < 1e-4, pp\n"
        "assert not jax.config.jax_enable_x64\n"
        "print('float32 ok')\n"
    )
    # XLA's default CPU emitters (the test processes compile with the classic ones, conftest.py): both paths run
    env = dict(os.environ, XLA_FLAGS="--xla_cpu_use_fusion_emitters=true")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "float32 ok" in out.stdout


def test_discrete_settings_decay_the_predictor_as_its_own_parameter_group():
    """A PyTorch-style loop with the predictor in its own parameter group (lr_p, the same weight_decay) shrinks W_p
    by lr_p * wd per step: eta_p = alpha_p * eta in ODE units. Exact GD on the eigenmode ODE with to_ode()'s
    parameters is that loop step for step (1e-12; the per-mode Tian loss with the online target, lambda_s = 1.5,
    lambda_d = 1); the decay eta on W_p instead (Tian et al.'s convention, eta_p unset) puts w more than 1 % off
    after 1500 steps."""
    s = units.DiscreteSettings(lr=0.02, lr_predictor=0.05, ema_decay=0.993, weight_decay=0.004)
    p = s.to_ode()
    assert p.eta_p == pytest.approx(2.5 * 0.004) and p.predictor_decay == p.eta_p
    assert ds.TianParams(eta=0.3).predictor_decay == 0.3
    w, wp = np.array([0.4, 0.9, 1.3]), np.array([0.5, 0.7, 1.1])
    y0 = (w.copy(), wp.copy())
    for _ in range(1500):  # dL/dw and dL/dw_p of L = E[(w_p w u1 - sg(w) u2)^2] / 2 per mode
        r = wp * w * 1.5 - w * 1.0
        w, wp = w - s.lr * (wp * r + s.weight_decay * w), wp - s.lr_predictor * (w * r + s.weight_decay * wp)
    m = ds.TianModes(target="online")
    data = ds.ModeData.isotropic(0.5, 3)
    start = m.initial_state(jnp.asarray(y0[0]), jnp.asarray(y0[1]), params=p)
    got = ds.gradient_descent(m, start, (p, data), s.lr, 1500).final
    np.testing.assert_allclose(got.w, w, rtol=1e-12)
    np.testing.assert_allclose(got.w_p, wp, rtol=1e-12)
    old = ds.gradient_descent(m, start, (p.replace(eta_p=None), data), s.lr, 1500).final
    assert np.max(np.abs(np.asarray(old.w) / w - 1)) > 1e-2  # measured 10 % on the smallest mode
