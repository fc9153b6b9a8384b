r"""Discrete training of a network model ([`dynsim.Network`][dynsim.models.Network] with `args` its
[`ViewData`][dynsim.networks.ViewData], or the [`SSLNet`][dynsim.networks.SSLNet] preset with
`args = (NetParams, ViewData)`): GD with exact expected gradients or minibatch SGD, as one jitted
scan ([`dynsim.solvers.iterate`][dynsim.solvers.iterate]); and the flow through the solver layer.

[`train`][dynsim.networks.train] returns a [`Solution`][dynsim.solvers.Solution] whose `ts` are ODE times
$t = \mathrm{lr}\cdot k$ ([`dynsim.units`][dynsim.units]), so runs, flows and the eigenmode theory share
one time axis. Random keys: step `k` of seed `s` uses `fold_in(key(s), k)`, so a run does not
depend on how it is saved or batched; [`train`][dynsim.networks.train] with several seeds vmaps over them.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from dynsim import _checks
from dynsim._pytree import join_parameters, split_parameters
from dynsim.components import EMA
from dynsim.models import NetState, Network
from dynsim.networks._ssl_net import SSLNet, _unpack
from dynsim.solvers import DEFAULTS, Solution, check_on_failure, handle_failure, iterate, solve


def as_network(model, args):
    """`(Network, ViewData)` for a [`Network`][dynsim.models.Network] with `args` its data, or an
    [`SSLNet`][dynsim.networks.SSLNet] with `args = (NetParams, ViewData)` (its `family`)."""
    if isinstance(model, Network):
        return model, args
    if isinstance(model, SSLNet):
        params, data = _unpack(args)
        return model.family(params), data
    raise TypeError(f"model must be a dynsim.Network or an SSLNet, got {type(model).__name__}")


def _train_body(parameters, structure, y0: NetState, data, lr, key, n_saves: int, every, batch: int | None):
    model = join_parameters(parameters, structure)
    lr = jnp.asarray(lr, y0.W.dtype)
    nodes = model.expectation_nodes(data) if batch is None else None
    draw = None if batch is None else model.sampler(data, batch)

    def step(y, k):
        b = nodes if batch is None else draw(jax.random.fold_in(key, k))
        return model.step(y, k, b, batch is None, lr, data)

    return iterate(step, y0, n_saves, every, lr)


_train_jit = jax.jit(_train_body, static_argnames=("structure", "n_saves", "every", "batch"))
#: the step count between saves traced (a `fori_loop`): new counts reuse the compiled program
_train_counted_jit = jax.jit(_train_body, static_argnames=("structure", "n_saves", "batch"))


def train_core(model, y0: NetState, args, lr, key, n_saves: int, every: int, batch: int | None):
    """The pure, vmappable core of [`train`][dynsim.networks.train]: `n_saves * every` steps, saving every `every`.
    `batch=None` is GD on the exact expectation; `key` is a JAX PRNG key (unused by GD). The model's
    float parameters are traced (new values do not recompile)."""
    net, data = as_network(model, args)
    if isinstance(every, int):
        return _train_jit(*split_parameters(net), y0, data, lr, key, n_saves=n_saves, every=every, batch=batch)
    return _train_counted_jit(*split_parameters(net), y0, data, lr, key, n_saves=n_saves, every=every, batch=batch)


def train(model, y0: NetState, args, lr, n_steps: int, *, batch: int | None = None, seed=0,
          n_saves: int | None = None, on_failure: str = DEFAULTS.on_failure, static_steps: bool = True) -> Solution:
    """Train for `n_steps` steps at learning rate `lr`: GD on exact expected gradients
    (`batch=None`) or SGD with minibatches of `batch`.

    Args:
        seed: an int, or a sequence of ints to run several seeds at once (vmapped; the result then
            has a leading seed axis).
        n_saves: number of saved states after the start (must divide `n_steps`; default 1).
        static_steps: `True`: the step count is compiled in (a `lax.scan`, differentiable in reverse mode);
            `False`: it is traced (a `fori_loop`), so runs of other lengths reuse the compiled program, with the
            same values step by step; forward-mode derivatives only.
    Raises:
        ValueError: `lr <= 0`, `batch < 1`, `sgd_sampling="moments"` that does not apply, an EMA decay `1 - lr*beta` outside `[0, 1]`,
            or bad parameters/state (named), or an unknown `on_failure`.
        SolveError: a NaN/inf appeared, with `on_failure="raise"` (`"warn"` warns and `"flag"` returns
            the run with `status` `NONFINITE`, as in [`dynsim.solve`][dynsim.solvers.solve]).
    """
    check_on_failure(on_failure)
    n_steps, n_saves = _checks.check_step_counts(lr, n_steps, n_saves)
    if batch is not None and int(batch) < 1:
        raise ValueError(f"batch must be >= 1 (or None for exact expected gradients), got {batch}")
    model.validate(y0, args)
    net, data = as_network(model, args)
    if isinstance(net.target, EMA):
        _checks.check_in_range("EMA decay per step (1 - lr*beta)", 1.0 - np.asarray(lr) * np.asarray(net.target.beta),
                               0.0, 1.0)
    if batch is not None and data.points is not None and int(batch) > np.shape(data.points)[0]:
        raise ValueError(f"batch {batch} exceeds the finite dataset size {np.shape(data.points)[0]}")
    b = None if batch is None else int(batch)
    if b is None:
        net.warn_node_error(y0, data)
    if b is not None and net.sgd_sampling == "moments" and (data.points is not None or b < 2 * data.n1):
        raise ValueError(f"sgd_sampling='moments' needs fresh Gaussian inputs and batch >= 2 n1 = {2 * data.n1}")
    for s_ in np.atleast_1d(np.asarray(seed, dtype=object)):
        _checks.check_count("seed", s_, 0)
        if int(s_) >= 2**32:
            raise ValueError(f"seed must be below 2**32, got {s_}")
    seeds = np.atleast_1d(np.asarray(seed, dtype=np.uint32))
    keys = jax.vmap(jax.random.key)(jnp.asarray(seeds))
    every = n_steps // n_saves if static_steps else jnp.asarray(n_steps // n_saves, jnp.int32)
    run = partial(train_core, model, y0, args, lr, n_saves=n_saves, every=every, batch=b)
    sol = replace(jax.vmap(run)(keys), time_axis=1) if np.ndim(seed) else run(keys[0])
    return handle_failure(sol, on_failure)


def flow(model, y0: NetState, args, t1, *, saveat=None, **solver_kwargs) -> Solution:
    """Integrate the expected-gradient flow to time `t1` with [`dynsim.solve`][dynsim.solvers.solve]; for closed-form
    predictors the saved `W_p` are filled in from the saved weights (the flow does not evolve them)."""
    net, data = as_network(model, args)
    if all(_checks.is_concrete(v) for v in jax.tree.leaves(y0)):
        net.warn_node_error(y0, data)
    sol = solve(model, y0, args, t1, saveat=saveat, **solver_kwargs)
    if net.closed_form:
        Wp = jax.vmap(lambda y: net.predictor_now(y, data))(sol.ys)
        sol = replace(sol, ys=sol.ys._replace(W_p=Wp))
    return sol
