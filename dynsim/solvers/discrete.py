r"""Discrete gradient descent on a flow: the exact map :math:`y_{k+1} = y_k + \mathrm{lr}\,f(y_k)`.

With exact (expected) gradients, full-batch GD on the weights *is* explicit Euler on the
gradient flow, with time :math:`t = \mathrm{lr}\cdot k` (tian2021.md §5; halvagal2023.md §2.3,
where e.g. :math:`c \leftarrow (1 + \mathrm{lr}\,\lambda(1-k\lambda))^2 c` is this map on the w-form).
So the discrete maps of the papers are obtained from the same models used by :func:`dynsim.solve`.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from dynsim import _checks
from dynsim.solvers.solution import Solution, Status


@partial(jax.jit, static_argnames=("model", "n_saves", "every"))
def _gd_scan(model, y0, args, lr, n_saves, every):
    y0f, unravel = ravel_pytree(y0)
    lr = jnp.asarray(lr, y0f.dtype)

    def step(y, _):
        return y + lr * ravel_pytree(model(0.0, unravel(y), args))[0], None

    def block(y, _):
        y, _ = jax.lax.scan(step, y, None, length=every)
        return y, y

    _, ys = jax.lax.scan(block, y0f, None, length=n_saves)
    ys = jnp.concatenate([y0f[None], ys])
    finite = jnp.all(jnp.isfinite(ys))
    status = jnp.where(finite, Status.SUCCESS, Status.NONFINITE).astype(jnp.int32)
    ts = lr * every * jnp.arange(n_saves + 1, dtype=y0f.dtype)
    return Solution(ts=ts, ys=jax.vmap(unravel)(ys), status=status, event_time=jnp.asarray(jnp.inf, y0f.dtype),
                    n_steps=jnp.asarray(n_saves * every, jnp.int32))


def gradient_descent(model, y0, args, lr, n_steps: int, n_saves: int | None = None, on_failure="raise") -> Solution:
    """Iterate :math:`y \\leftarrow y + \\mathrm{lr}\\, \\mathrm{model}(y)` for ``n_steps`` steps.

    Saves the initial state and every ``n_steps // n_saves`` steps (``n_saves`` must divide
    ``n_steps``; default: only the final state). ``Solution.ts`` holds ODE times ``lr * step``.
    ``lr`` is traced (no recompilation per value); a NaN/inf gives status ``NONFINITE``.
    """
    n_steps, n_saves = _checks.check_step_counts(lr, n_steps, n_saves)
    for node in jax.tree.leaves(args, is_leaf=lambda x: hasattr(x, "validate")):
        if hasattr(node, "validate"):
            node.validate()
    if hasattr(model, "validate"):
        model.validate(y0, args)
    sol = _gd_scan(model, y0, args, lr, n_saves, n_steps // n_saves)
    if on_failure == "raise":
        sol.raise_if_failed()
    return sol
