r"""Boundaries that are folds (saddle-node bifurcations) of fixed points, located from the fixed-point conditions.

Where a surviving fixed point $y^*$ of $\dot y = F(y; x)$ meets a saddle and both disappear as the parameter $x$
crosses $x_c$ (Tian et al. 2021, Eq. 16: $p^*_\pm$ merge at $\eta_c$), the point $(y^*, x_c)$ solves the extended
system (Seydel, *Practical Bifurcation and Stability Analysis*, §5.4; Kuznetsov, *Elements of Applied Bifurcation
Theory*, §10.2)

$$
F(y; x) = 0,\qquad \partial_yF(y; x)\,v = 0,\qquad v_0^\top v = 1,
$$

$2n + 1$ equations in $(y, v, x)$, regular at a generic fold, so Newton's method converges quadratically from a nearby
guess. [`fold_point`][dynsim.sweeps.fold_point] solves it with `optimistix.Newton`; its derivative with respect to
any other parameter comes from the implicit-function theorem on the same system (optimistix's implicit adjoint), e.g.
$\partial\eta_c/\partial\sigma^2$. Coordinates the field does not read (a target held at $\tau W$, a predictor that is
not trained) make $\partial_yF$ singular everywhere; they are left out of the system (found from the field's Jacobian
at the guess) and keep their guessed values.

The guess is the end of a trajectory on the surviving side of a boundary search's final bracket
([`fold_boundary`][dynsim.sweeps.fold_boundary]): a check that the trajectory-based boundary is this fold, and, where
it is not (an EMA target whose start leaves the basin before the fold), a measure of how far the basin boundary lies
from it.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
from jax.flatten_util import ravel_pytree

from dynsim.solvers import integrate
from dynsim.sweeps._config import SweepConfig
from dynsim.sweeps._runner import ChunkRunner, config_keys


class Fold(NamedTuple):
    """A located fold: the parameter value `x`, the fixed point `y` (the model's state type), the null vector `v` of
    the Jacobian (active coordinates, normalised by $v_0^\\top v = 1$), the largest residual `residual` and Newton's
    `ok`."""

    x: jax.Array
    y: object
    v: jax.Array
    residual: jax.Array
    ok: jax.Array


def active_coordinates(field, y, args) -> tuple[int, ...]:
    """Indices of the raveled state that the field reads (a non-zero Jacobian column at `y`); concrete inputs."""
    yf, unravel = ravel_pytree(y)
    J = jax.jacfwd(lambda z: ravel_pytree(field(0.0, unravel(z), args))[0])(yf)
    return tuple(int(i) for i in np.flatnonzero(np.any(np.asarray(J) != 0, axis=0)))


def fold_point(adapter, p: dict, name: str, x0, y_guess, key, active: tuple[int, ...], *, rtol: float = 1e-12,
               atol: float = 1e-12, max_steps: int = 64) -> Fold:
    """Solve the extended system of the module docstring for the parameter `name` of the sweep model `adapter`
    (a kind with a vector field, `field`: the mode and network kinds), the other parameter values `p`, from the
    guess `(x0, y_guess)`. `active`: the coordinates kept ([`active_coordinates`][dynsim.sweeps.active_coordinates]).
    Traceable: vmap it over rays; differentiate it with respect to `p` (implicit function theorem)."""
    yf0, unravel = ravel_pytree(y_guess)
    idx = jnp.asarray(active)
    n = len(active)

    def F(ya, x, p):
        model, _, args = adapter.field(p | {name: x}, key)
        return ravel_pytree(model(0.0, unravel(yf0.at[idx].set(ya)), args))[0][idx]

    ya0 = yf0[idx]
    J0 = jax.jacfwd(F)(ya0, x0, p)
    v0 = jnp.linalg.svd(J0)[2][-1]  # right singular vector of the smallest singular value: the near-null direction

    def residual(z, p):
        ya, v, x = z[:n], z[n:2 * n], z[2 * n]
        f, Jv = jax.jvp(lambda q: F(q, x, p), (ya,), (v,))
        return jnp.concatenate([f, Jv, jnp.atleast_1d(v0 @ v - 1.0)])

    z0 = jnp.concatenate([ya0, v0, jnp.atleast_1d(jnp.asarray(x0, ya0.dtype))])
    sol = optx.root_find(residual, optx.Newton(rtol=rtol, atol=atol), z0, args=p, max_steps=max_steps, throw=False)
    z = sol.value
    res = jnp.max(jnp.abs(residual(z, p)))
    return Fold(x=z[2 * n], y=unravel(yf0.at[idx].set(z[:n])), v=z[n:2 * n], residual=res,
                ok=(sol.result == optx.RESULTS.successful) & jnp.isfinite(res))


def fold_boundary(cfg: SweepConfig, result, *, rtol: float = 1e-12, atol: float = 1e-12) -> dict:
    """Fold points for every ray of a finished boundary search `result` (a
    [`SweepResult`][dynsim.sweeps.SweepResult] of [`find_boundary`][dynsim.sweeps.find_boundary] or
    [`dynsim.sweeps.load`][dynsim.sweeps.load]) of the configuration `cfg`: the guess of each ray is the state at
    `t1` of a solve at the surviving end of its final bracket. Returns `(n_rays,)` arrays `fold` (the parameter value,
    NaN where Newton failed), `residual` and `ok`."""
    name = cfg.boundary["parameter"]
    runner = ChunkRunner(cfg)  # the values, the start keys and the recipe every solve of the search used
    adapter, solver, t1, dtype = runner.recipe.model, runner.recipe.solver, runner.recipe.t1, runner.dtype
    s = result.summaries
    x_alive = np.where(s["below"], s["upper"], s["lower"])  # the end where the criterion (collapse) is false
    values = {k: jnp.asarray(v) for k, v in runner.values.items()}
    fixed = runner.fixed
    keys = config_keys(runner.root, jnp.arange(cfg.n_configs))

    def settle(v, x, key):
        p = fixed | v | {name: x}
        model, y0, args = adapter.field(p, key)
        sol = integrate(model, y0, args, 0.0, t1, jnp.asarray([t1], dtype), solver)
        return jax.tree.map(lambda a: a[-1], sol.ys)

    x_alive = jnp.asarray(x_alive, dtype)
    ends = jax.jit(jax.vmap(settle))(values, x_alive, keys)
    first = jax.tree.map(lambda a: a[0], ends)
    model0, _, args0 = adapter.field(fixed | jax.tree.map(lambda a: a[0], values) | {name: x_alive[0]}, keys[0])
    active = active_coordinates(model0, first, args0)

    def one(v, x, y, key):
        return fold_point(adapter, fixed | v, name, x, y, key, active, rtol=rtol, atol=atol)

    folds = jax.jit(jax.vmap(one))(values, x_alive, ends, keys)
    ok = np.asarray(folds.ok)
    return {"fold": np.where(ok, np.asarray(folds.x), np.nan), "residual": np.asarray(folds.residual), "ok": ok}
