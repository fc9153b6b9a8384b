r"""Per-configuration summaries of a sweep, as pure `jnp` functions (they run inside the jitted chunk).

All spectra are per save time, modes on the last axis, sorted descending.

* [`collapse_auc`][dynsim.sweeps.collapse_auc]: Li, Efros & Pathak (2022) collapse metric as the authors' code computes it
  (Li et al. 2022): with singular values $\sigma_1 \ge \dots \ge \sigma_d$,
  $\mathrm{CEV}_k = \sum_{i\le k}\sigma_i / \sum_i\sigma_i$ and
  $\mathrm{AUC} = \frac1d\sum_{k=1}^d \mathrm{CEV}_k \in [\frac{d+1}{2d}, 1]$; higher = more collapsed.
  Un-squared $\sigma$ by default (the authors' code), $\sigma^2$ with `squared=True`
  (the explained-variance reading of their Eq. 2; never mix the two). For a linear encoder the
  population singular values are $\sigma_i = \sqrt{\lambda_i(W\Sigma_xW^\top)}$ (`docs/theory/richemond_li_wang.md#auc`; the
  $\sqrt N$ cancels in the ratio).
* [`auc_flat`][dynsim.sweeps.auc_flat], [`auc_rank_k`][dynsim.sweeps.auc_rank_k]: the closed forms of `docs/theory/richemond_li_wang.md#auc-closed-forms`.
* `effective_rank`: Roy & Vetterli's $\exp H(\sigma/\sum\sigma)$ (`dynsim.networks.diagnostics`).
* `surviving_modes`: modes with $s_j > \theta$ at the end.
* [`derivative_name`][dynsim.sweeps.derivative_name] / `derivatives`: the sensitivities of the
  `DIFFERENTIABLE` summaries to chosen parameters (a sweep's `[sensitivity]` table).
* `time_to_fraction`: first time the total strength $S(t) = \sum_j s_j(t)$ has covered the
  fraction `f` of its way to the end value, $|S(t) - S(t_1)| \le (1-f)|S(0) - S(t_1)|$; the end state
  stands in for the fixed point (check `converged`), and the time is linearly interpolated between saves.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from dynsim.networks import effective_rank as _effective_rank, singular_values
from dynsim.solvers import Status

#: the summaries that have a derivative with respect to the parameters (the rest are counts, flags and codes)
DIFFERENTIABLE = ("final_spectrum", "final_variance", "spectrum", "collapse_time", "auc", "auc_t", "effective_rank",
                  "time_to_fraction", "loss", "loss_t")


@partial(jax.jit, static_argnames="squared")  # one program per shape, not one per array operation, when called eagerly
def collapse_auc(sv, squared: bool = False):
    r"""Li et al.'s AUC of the cumulative explained-variance curve from singular values `sv` (`(..., d)`,
    any order, `>= 0`). A spectrum that is all zero (complete collapse) gets 1, the rank-one limit."""
    x = jnp.flip(jnp.sort(jnp.maximum(sv, 0.0), axis=-1), axis=-1)
    x = x * x if squared else x
    total = jnp.sum(x, axis=-1, keepdims=True)
    cev = jnp.cumsum(x, axis=-1) / jnp.where(total > 0, total, 1.0)
    auc = jnp.mean(cev, axis=-1)
    return jnp.where(total[..., 0] > 0, auc, 1.0)


def auc_flat(d: int) -> float:
    """`d` equal singular values give AUC = (d+1)/(2d)."""
    return (d + 1) / (2 * d)


def auc_rank_k(k: int, d: int) -> float:
    """`k` equal singular values and `d - k` zeros give AUC = 1 - (k-1)/(2d)."""
    return 1 - (k - 1) / (2 * d)


def effective_rank(s):
    """Effective rank from eigenvalues `s` of $WW^\\top$; 0 for an all-zero spectrum."""
    return jnp.where(jnp.sum(s, axis=-1) > 0, _effective_rank(jnp.where(s > 0, s, 0.0)), 0.0)


def surviving_modes(s_final, threshold):
    """Number of modes with $s_j > \\theta$ (`(..., M)` → `(...)`)."""
    return jnp.sum(s_final > threshold, axis=-1)


def time_to_fraction(ts, total, fraction):
    """First time `total(t)` (shape `(T,)`) is within `(1-fraction)|total(0) - total(T)|` of its end
    value, interpolated linearly between saves; `0` when it never moved."""
    gap = jnp.abs(total - total[-1])
    tol = (1 - fraction) * gap[0]
    inside = gap <= tol
    k = jnp.argmax(inside)  # first save inside (the last one always is)
    km = jnp.maximum(k - 1, 0)
    g0, g1 = gap[km], gap[k]
    theta = jnp.where(g0 > g1, (g0 - tol) / jnp.where(g0 > g1, g0 - g1, 1.0), 1.0)
    t = ts[km] + jnp.clip(theta, 0.0, 1.0) * (ts[k] - ts[km])
    return jnp.where(k == 0, ts[0], t)


def summarize(traj, recipe) -> dict:
    r"""The summaries stored per configuration, from a [`Trajectory`][dynsim.sweeps.Trajectory]:

    `final_spectrum` (M,) $s_j(t_1)$; `final_variance` (M,) the representation variances
    $\lambda_j(W\Sigma_xW^\top)$ at $t_1$; `spectrum` (T, M) $s_j$ at the saves; `collapsed` (bool:
    every $s_j \le \theta$ by the end, the solver's event when `collapse = "all"`); `collapse_time`
    (event time, `inf` if none; with `collapse = "none"` the first save below θ); `surviving_modes`;
    `auc` (final, σ or σ² per the recipe); `auc_t` (T,); `effective_rank`; `time_to_fraction`;
    `converged` (relative change of $S$ over the last save interval < 1e-3); `status`; and, for the kinds with an
    expected loss (all but `grassmann`), `loss` (at $t_1$) and `loss_t` (T,).
    """
    s, v = traj.strength, traj.variance
    sf = s[-1]
    thr = recipe.threshold
    below = jnp.max(s, axis=-1) <= thr
    if recipe.collapse == "all":
        collapsed = traj.status == Status.EVENT
        t_c = traj.event_time
    else:
        collapsed = below[-1]
        t_c = jnp.where(jnp.any(below), traj.ts[jnp.argmax(below)], jnp.inf)
    total = jnp.sum(s, axis=-1)
    auc_t = collapse_auc(singular_values(v), squared=recipe.auc_squared)
    scale = jnp.maximum(jnp.abs(total[-1]), thr)
    return {
        "final_spectrum": sf,
        "final_variance": v[-1],
        "spectrum": s,
        "collapsed": collapsed,
        "collapse_time": t_c,
        "surviving_modes": jnp.where(collapsed, 0, surviving_modes(sf, thr)),  # the event state sits at θ
        "auc": auc_t[-1],
        "auc_t": auc_t,
        "effective_rank": effective_rank(sf),
        "time_to_fraction": time_to_fraction(traj.ts, total, recipe.fp_fraction),
        "converged": collapsed | (jnp.abs(total[-1] - total[-2]) / scale < 1e-3),
        "status": traj.status,
    } | ({} if traj.loss is None else {"loss": traj.loss[-1], "loss_t": traj.loss})


def derivative_name(outcome: str, parameter: str) -> str:
    r"""The stored name of $\partial(\mathrm{outcome})/\partial(\mathrm{parameter})$: `d_<outcome>_d_<parameter>`
    (e.g. `d_final_spectrum_d_eta`, `d_auc_d_target.beta`)."""
    return f"d_{outcome}_d_{parameter}"


def derivatives(recipe, p: dict, key) -> dict:
    r"""$\partial(\mathrm{outcome})/\partial(\mathrm{parameter})$ for every `recipe.outcomes` × `recipe.wrt`, at the
    configuration `p`, through the whole solve: forward mode (`jax.jacfwd`: the `rk45` loop, diffrax with its
    forward adjoint), or reverse mode (`jax.jacrev`, diffrax's checkpointed adjoint) when `recipe.reverse`. The
    solver's step-size control carries no derivative and an event time is differentiated by the implicit-function
    theorem at the event (`dynsim.solvers`), so each derivative is that of the computed outcome, exact to the
    solver's tolerance. Shapes: the outcome's, e.g. `(M,)` for `final_spectrum`.

    Returns `(summaries, derivatives)`: every summary of the configuration comes from the same solve."""
    def outcomes(x):
        s = summarize(recipe.model.simulate(p | x, key, recipe), recipe)
        return {o: s[o] for o in recipe.outcomes}, s

    jac, summaries = (jax.jacrev if recipe.reverse else jax.jacfwd)(outcomes, has_aux=True)(
        {w: p[w] for w in recipe.wrt})
    return summaries, {derivative_name(o, w): jac[o][w] for o in recipe.outcomes for w in recipe.wrt}


#: switching criteria of a boundary search (`[boundary] criterion`): what is true on the collapsed side
CRITERIA = {
    "collapsed": "every mode has collapsed by t1 (the summary `collapsed`); `level` unused",
    "surviving_modes": "fewer than `level` modes survive (level = k: the switch from k to k - 1 modes)",
    "effective_rank": "the final effective rank is below `level`",
    "auc": "Li et al.'s final AUC is above `level` (more collapsed)",
}


def criterion(summaries: dict, name: str, level: float):
    """The boolean criterion `name` (`CRITERIA`) of each configuration's summaries."""
    if name == "collapsed":
        return summaries["collapsed"]
    if name == "surviving_modes":
        return summaries["surviving_modes"] < level
    if name == "effective_rank":
        return summaries["effective_rank"] < level
    if name == "auc":
        return summaries["auc"] > level
    raise ValueError(f"unknown criterion {name!r}; choose one of {', '.join(CRITERIA)}")
