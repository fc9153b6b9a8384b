r"""Discrete iterations: one primitive, [`iterate`][dynsim.solvers.iterate], for every map dynsim runs step by step — the exact
gradient-descent map of a flow ([`gradient_descent`][dynsim.solvers.gradient_descent]), network training by GD and SGD
([`dynsim.networks.train`][dynsim.networks.train]) and Riemannian gradient descent ([`dynsim.grassmann.riemannian_gd`][dynsim.grassmann.riemannian_gd]).

With exact (expected) gradients, full-batch GD on the weights *is* explicit Euler on the gradient
flow, $y_{k+1} = y_k + \mathrm{lr}\,f(y_k)$, with time $t = \mathrm{lr}\cdot k$ (Tian et al.
2021 after Lemma 1; Halvagal et al. 2023, where e.g.
$c \leftarrow (1 + \mathrm{lr}\,\lambda(1-k\lambda))^2 c$ is this map on the per-mode form). So the
discrete maps of the papers are obtained from the same models used by [`dynsim.solve`][dynsim.solvers.solve].
"""

from __future__ import annotations

from functools import partial
from typing import Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from dynsim import _checks
from dynsim._pytree import join_parameters, split_parameters
from dynsim.solvers._defaults import DEFAULTS
from dynsim.solvers._solution import Solution, Status, check_on_failure, handle_failure


def _all_finite(tree):
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)]))


def iterate(step: Callable, y0, n_saves: int, every, dt, *, save: Callable | None = None, first=None) -> Solution:
    r"""Run $y_{k+1} = \mathrm{step}(y_k, k)$ for `n_saves * every` steps, saving every `every` steps.

    Traceable (use it inside `jit`/`vmap`). `every` is a Python int (a `lax.scan`: differentiable in
    reverse mode) or a traced integer (a `fori_loop`: new step counts do not recompile). `save(y)` maps
    the carried state to the saved one (default: itself) and `first` is the saved start (default
    `save(y0)`). Times are `dt * every * j`; `status` is `NONFINITE` when a saved state has a NaN/inf.

    Returns:
        [`Solution`][dynsim.solvers.Solution] with `n_saves + 1` saves, `n_steps = n_rhs = n_saves * every`, `n_rejected = 0`.
    """
    save = (lambda y: y) if save is None else save
    static = isinstance(every, int)

    def block(y, j):
        if static:
            y, _ = jax.lax.scan(lambda c, k: (step(c, k), None), y, j * every + jnp.arange(every))
        else:
            y = jax.lax.fori_loop(0, every, lambda i, c: step(c, j * every + i), y)
        return y, save(y)

    _, ys = jax.lax.scan(block, y0, jnp.arange(n_saves))
    first = save(y0) if first is None else first
    ys = jax.tree.map(lambda a, b: jnp.concatenate([jnp.asarray(a, b.dtype)[None], b]), first, ys)
    dtype = jnp.result_type(*[leaf.dtype for leaf in jax.tree.leaves(ys)], float)
    dt = jnp.asarray(dt, dtype)
    status = jnp.where(_all_finite(ys), Status.SUCCESS, Status.NONFINITE).astype(jnp.int32)
    n = jnp.asarray(n_saves * every, jnp.int32)
    return Solution(ts=dt * every * jnp.arange(n_saves + 1, dtype=dtype), ys=ys, status=status,
                    event_time=jnp.asarray(jnp.inf, dtype), n_steps=n, n_rejected=jnp.zeros((), jnp.int32), n_rhs=n)


@partial(jax.jit, static_argnames=("structure", "n_saves", "every"))
def _gd_scan(parameters, structure, y0, args, lr, n_saves, every):
    model = join_parameters(parameters, structure)
    y0f, unravel = ravel_pytree(y0)
    lr = jnp.asarray(lr, y0f.dtype)

    after = getattr(model, "after_step", None)

    def step(y, _):
        y = y + lr * ravel_pytree(model(0.0, unravel(y), args))[0]
        return y if after is None else ravel_pytree(after(unravel(y), args))[0]

    sol = iterate(step, y0f, n_saves, every, lr)
    return Solution(ts=sol.ts, ys=jax.vmap(unravel)(sol.ys), status=sol.status, event_time=sol.event_time,
                    n_steps=sol.n_steps, n_rejected=sol.n_rejected, n_rhs=sol.n_rhs)


def gradient_descent(model, y0, args, lr, n_steps: int, n_saves: int | None = None,
                     on_failure: str = DEFAULTS.on_failure) -> Solution:
    """Iterate $y \\leftarrow y + \\mathrm{lr}\\, \\mathrm{model}(y)$ for `n_steps` steps (then
    `model.after_step(y, args)` where the model defines it: a closed-form predictor's recorded value is
    recomputed from the stepped state, not stepped).

    Saves the initial state and every `n_steps // n_saves` steps (`n_saves` must divide
    `n_steps`; default: only the final state). `Solution.ts` holds ODE times `lr * step`.
    `lr` is traced (no recompilation per value); a NaN/inf gives status `NONFINITE`, handled by
    `on_failure` (`"raise"`, `"warn"` or `"flag"`, as in [`dynsim.solve`][dynsim.solvers.solve]).
    """
    check_on_failure(on_failure)
    n_steps, n_saves = _checks.check_step_counts(lr, n_steps, n_saves)
    for node in jax.tree.leaves(args, is_leaf=lambda x: hasattr(x, "validate")):
        if hasattr(node, "validate"):
            node.validate()
    if hasattr(model, "validate"):
        model.validate(y0, args)
    sol = _gd_scan(*split_parameters(model), y0, args, lr, n_saves, n_steps // n_saves)
    return handle_failure(sol, on_failure)
