r"""What is recorded along every network run, computed from the saved states.

| key | quantity (per saved time) | source |
|---|---|---|
| `spectrum_F` | eigenvalues of $F = WW^\top$, ascending, `(T, n2)` (the modes' $s_j$) | Tian Eqs. 11-13 |
| `spectrum_C` | eigenvalues of the embedding's cross-correlation $C = W\Gamma W^\top$, $\Gamma = \tfrac12(S_{12} + S_{12}^\top)$ the views' symmetrised cross moment, ascending, `(T, n2)` | Simon et al. 2023 (`docs/theory/simon2023.md#model`) |
| `spectrum_Wp` | eigenvalues of the symmetric part of $W_p$, ascending, `(T, n2)` | Tian Eq. 11 |
| `asymmetry_Wp` | $\Vert W_p - W_p^\top\Vert _F / (2\Vert W_p\Vert _F)$ (0 for a symmetric predictor) | Tian App. B, Fig. 8 |
| `commutator` | $\Vert [F, W_p]\Vert _F$ | Tian Thm. 3, Fig. 9 |
| `loss` | the expected loss (exact/QMC nodes) at the saved state | `losses` |
| `balancing` | $\Vert WW^\top - \alpha_p^{-1}W_p^\top W_p - e^{-2\eta t}C\Vert _F / n_0$, Theorem 1 | Tian Eq. 5 (Tian et al. 2021) |
| `stable_rank` | $\Vert W\Vert _F^2/\Vert W\Vert _2^2 = \sum s_j / \max s_j$ | Richemond et al. 2023's rank diagnostic |
| `effective_rank` | $\exp H(\sigma/\textstyle\sum\sigma)$, $\sigma$ singular values of W | Roy & Vetterli 2007 |

The balancing residual is normalised by $n_0 = \|W_0W_0^\top\|_F + \alpha_p^{-1}\|W_{p,0}^\top W_{p,0}\|_F$;
it is an invariant (zero up to round-off for the flow, $O(\mathrm{lr})$ for GD) for any loss of
$p = W_pWx_1$ with stop-gradient and `wd == wd_p` (Theorem 1's proof uses only that
structure), not for closed-form predictors or without stop-gradient.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from dynsim._pytree import join_parameters, split_parameters
from dynsim.models import NetState
from dynsim.networks._training import as_network


def _fro(A):
    return jnp.sqrt(jnp.sum(A * A, axis=(-2, -1)))


def stable_rank(s):
    r"""$\|W\|_F^2 / \|W\|_2^2 = \sum s_j/\max s_j$ from the eigenvalues `s` of $WW^\top$ (last axis)."""
    return jnp.sum(s, axis=-1) / jnp.max(s, axis=-1)


def singular_values(s):
    r"""$\sigma = \sqrt{\max(s, 0)}$ from eigenvalues `s` of $WW^\top$ (round-off below 0 clipped), with a zero (not
    NaN) derivative where $s \le 0$, so collapsed modes leave derivatives through the dynamics finite."""
    pos = s > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, s, 1.0)), 0.0)


def effective_rank(s):
    r"""Roy & Vetterli's effective rank $\exp(-\sum_i q_i\ln q_i)$, $q = \sigma/\sum\sigma$, with
    $\sigma = \sqrt{s}$ the singular values of W from the eigenvalues `s` of $WW^\top$ (last axis)."""
    sv = singular_values(s)
    q = sv / jnp.sum(sv, axis=-1, keepdims=True)
    return jnp.exp(-jnp.sum(jnp.where(q > 0, q * jnp.log(jnp.where(q > 0, q, 1.0)), 0.0), axis=-1))


def diagnostics(model, ts, ys: NetState, args) -> dict:
    """The table above for saved states `ys` (leading time axis) at times `ts`, for a network model and its
    `args` ([`dynsim.networks.train`][dynsim.networks.train]); returns numpy-able arrays. $\\alpha_p$ is the trainable
    predictor's (1 for others)."""
    model, data = as_network(model, args)
    return _diagnostics(*split_parameters(model), jnp.asarray(ts), ys, data)


@functools.partial(jax.jit, static_argnames="structure")
def _diagnostics(parameters, structure, ts, ys: NetState, data) -> dict:
    """[`diagnostics`][dynsim.networks.diagnostics] as one compiled program (the model's floats traced)."""
    model = join_parameters(parameters, structure)
    alpha_p = getattr(model.predictor, "alpha_p", 1.0)
    nodes = model.expectation_nodes(data)
    W, Wp = ys.W, ys.W_p
    F = W @ jnp.swapaxes(W, -1, -2)
    Wp_sym = (Wp + jnp.swapaxes(Wp, -1, -2)) / 2
    gram = lambda P: jnp.swapaxes(P, -1, -2) @ P  # noqa: E731
    C0 = F[0] - gram(Wp[0]) / alpha_p
    decay = jnp.exp(-2 * model.weight_decay * ts)[:, None, None]
    n0 = _fro(F[0]) + _fro(gram(Wp[0])) / alpha_p
    loss = jax.vmap(lambda y: model.loss_value(y.W, y.W_p, model.target_weights(y), nodes))(ys)
    spectrum = jnp.linalg.eigvalsh(F)
    S12 = jnp.asarray(data.view_moments()[1])
    Gamma = (S12 + S12.T) / 2
    return {
        "t": ts,
        "spectrum_F": spectrum,
        "spectrum_C": jnp.linalg.eigvalsh(W @ Gamma @ jnp.swapaxes(W, -1, -2)),
        "spectrum_Wp": jnp.linalg.eigvalsh(Wp_sym),
        "asymmetry_Wp": _fro(Wp - jnp.swapaxes(Wp, -1, -2)) / (2 * jnp.maximum(_fro(Wp), 1e-300)),
        "commutator": _fro(F @ Wp - Wp @ F),
        "loss": loss,
        "balancing": _fro(F - gram(Wp) / alpha_p - decay * C0) / n0,
        "stable_rank": stable_rank(spectrum),
        "effective_rank": effective_rank(spectrum),
    }
