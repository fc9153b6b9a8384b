r"""Closed-form predictors at matrix level: :math:`W_p` from the predictor-input moments.

Every predictor here is a function of two :math:`n_2\times n_2` moments of the predictor input
:math:`z_1 = W x_1` and the target output :math:`z_2`:

* ``S11`` :math:`= E[z_1 z_1^\top]` (uncentred; Richemond's :math:`\Sigma = Z_\theta^\top Z_\theta / b`),
* ``S12`` :math:`= E[z_1 z_2^\top]` (Richemond's :math:`Z_\theta^\top Z'_\xi / b`; only LRP and NE use it),

and returns :math:`W_p` in dynsim's **column convention** :math:`p = W_p z_1`. Richemond et al. write
rows, :math:`Z P`, so :math:`W_p = P^\top` (richemond_li_wang.md checklist 1). Gradients never flow
through these maps (the caller applies ``stop_gradient``).

=====================  =============================================================  =========================================
``kind``               :math:`W_p`                                                    source
=====================  =============================================================  =========================================
``"power"``            :math:`U\,\mathrm{diag}(|s|^{\alpha} + \varepsilon)\,U^\top`     Halvagal et al. 2023 toy (α = 1, ε = 0)
``"directpred_paper"`` :math:`U\,\mathrm{diag}(\sqrt{s} + \varepsilon\max s)\,U^\top`     Tian et al. 2021, Eq. 18
``"directpred_code"``  :math:`U\,\mathrm{diag}(\max(\sqrt{s/\max s} + \varepsilon, 10^{-4}))U^\top`  luckmatters ``compute_w_corr``
``"directset"``        :math:`(S/\|S\|)^{\alpha} + \varepsilon I`; DirectCopy is α = 1       Wang et al. 2021 (richemond_li_wang.md C.1)
``"lrp"``              :math:`S_{21} S_{11}^{-1}` (:math:`P^* = S_{11}^{-1}S_{12}`)        Richemond et al. 2023, A.2 (Grill et al.)
``"ne"``               :math:`2S_{21} - S_{21}S_{11}` (:math:`P = 2S_{12} - S_{11}S_{12}`)  Richemond et al. 2023, Prop. 4
``"visser"``           :math:`P_{k+1} = P_k + h(\Sigma - P_k^2)`, :math:`P_0 = I/(2h)`, n steps   Richemond et al. 2023, Prop. 6
``"ns"``               coupled Newton–Schulz, n steps, :math:`A_n\sqrt{\|\Sigma\|_F}`        Richemond et al. 2023, Prop. 7 (n = 9)
``"ns2"``              ``ns`` applied twice (:math:`\approx\Sigma^{1/4}`), n steps each        Richemond et al. 2023 (n = 7)
``"stiefel"``          :math:`B_n\Sigma/\|B_n\|_F`, NS on :math:`\Sigma^2`, n steps            Richemond et al. 2023, Prop. 10 (n = 9)
=====================  =============================================================  =========================================

:math:`s, U` are the eigenvalues/vectors of the symmetrised ``S11``. The finite-iteration
predictors (Visser, NS, NS², Stiefel) are **spectral filters at their iteration counts**, not their
limits (richemond_li_wang.md A.4, A.6): :func:`ns_filter`, :func:`stiefel_filter` and
:func:`visser_filter` give the scalar maps for tests and figures.

**Unconfirmed details, exposed as parameters** (:class:`NetPredictorParams`): the ridge (``+ rI``
added to every closed form), Visser's step ``h`` and count, NE's normalisation (``ne_norm``,
static: ``"none"`` default, or divide both moments by ``max s`` / ``‖S11‖_F`` first), DirectSet's
normalisation (``norm``), the NS² rescaling between stages (the second stage runs on the first
stage's output and renormalises by its own Frobenius norm, as NS does).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dynsim import _checks
from dynsim.eigenmodes.predictors import NORMS, predictor_eigenvalues

SPECTRAL = ("power", "directpred_paper", "directpred_code", "directset")
ITERATIVE = ("visser", "ns", "ns2", "stiefel")
CROSS = ("lrp", "ne")
CLOSED_FORMS = SPECTRAL + CROSS + ITERATIVE
NE_NORMS = ("none", "max", "frobenius")


def _sym(A):
    return (A + jnp.swapaxes(A, -1, -2)) / 2


def spectral_map(S, fn):
    """:math:`U\\,\\mathrm{diag}(fn(s))\\,U^\\top` for the symmetrised ``S = U diag(s) U^T``."""
    s, U = jnp.linalg.eigh(_sym(S))
    return (U * fn(s)[..., None, :]) @ jnp.swapaxes(U, -1, -2)


def newton_schulz(A0, n: int):
    r"""Coupled Newton–Schulz (Richemond Prop. 7): :math:`A_{k+1} = \tfrac12 A_k(3I - B_kA_k)`,
    :math:`B_{k+1} = \tfrac12(3I - B_kA_k)B_k`, :math:`B_0 = I`. For :math:`\|A_0\|_2 < 3`,
    :math:`A_n \to A_0^{1/2}` and :math:`B_n \to A_0^{-1/2}`. Returns ``(A_n, B_n)``."""
    eye = jnp.eye(A0.shape[-1], dtype=A0.dtype)

    def body(_, AB):
        A, B = AB
        T = 3 * eye - B @ A
        return 0.5 * A @ T, 0.5 * T @ B

    return jax.lax.fori_loop(0, n, body, (A0, jnp.broadcast_to(eye, A0.shape)))


def ns_sqrt(S, n: int):
    r"""NS predictor: :math:`A_n(\Sigma/\|\Sigma\|_F)\cdot\sqrt{\|\Sigma\|_F} \approx \Sigma^{1/2}`."""
    fro = jnp.sqrt(jnp.sum(S * S, axis=(-2, -1), keepdims=True))
    A, _ = newton_schulz(S / fro, n)
    return A * jnp.sqrt(fro)


def stiefel(S, n: int):
    r"""Stiefel predictor (Prop. 10): NS on :math:`M = \Sigma^\top\Sigma` gives :math:`B_n \approx (M/\|M\|_F)^{-1/2}`;
    :math:`P = B_n\Sigma^\top/\|B_n\|_F` (row form; the transpose for symmetric Σ is the same matrix)."""
    M = jnp.swapaxes(S, -1, -2) @ S
    fro = jnp.sqrt(jnp.sum(M * M, axis=(-2, -1), keepdims=True))
    _, B = newton_schulz(M / fro, n)
    P = B @ jnp.swapaxes(S, -1, -2) / jnp.sqrt(jnp.sum(B * B, axis=(-2, -1), keepdims=True))
    return jnp.swapaxes(P, -1, -2)


def visser(S, n: int, h):
    r"""Visser iteration (Prop. 6): :math:`P_0 = I/(2h)`, :math:`P_{k+1} = P_k + h(\Sigma - P_k^2)`, n steps."""
    eye = jnp.eye(S.shape[-1], dtype=S.dtype)
    P0 = jnp.broadcast_to(eye / (2 * h), S.shape)
    return jax.lax.fori_loop(0, n, lambda _, P: P + h * (S - P @ P), P0)


# --- scalar filters (the maps the iterations apply to each eigenvalue) ---------------------------
def ns_filter(lam, n: int):
    """Scalar coupled NS on a normalised eigenvalue ``lam`` in (0, 1]: returns ``(a_n, b_n)`` (A.6 item 3)."""
    a, b = jnp.asarray(lam, float), jnp.ones_like(jnp.asarray(lam, float))
    for _ in range(n):
        t = 3 - b * a
        a, b = 0.5 * a * t, 0.5 * t * b
    return a, b


def stiefel_filter(s, n: int):
    """Eigenvalues of the Stiefel predictor for a PSD Σ with eigenvalues ``s`` (A.6 item 4)."""
    s = jnp.asarray(s, float)
    m = s * s
    _, b = ns_filter(m / jnp.sqrt(jnp.sum(m * m)), n)
    return b * s / jnp.sqrt(jnp.sum(b * b))


def visser_filter(s, n: int, h):
    """Eigenvalues after ``n`` Visser steps from ``1/(2h)`` (converges to ``sqrt(s)``; A.6 item 5)."""
    p = jnp.full_like(jnp.asarray(s, float), 1 / (2 * h))
    for _ in range(n):
        p = p + h * (s - p * p)
    return p


def closed_form_predictor(kind: str, S11, S12, pred, *, n_iter: int, norm: str = "max", ne_norm: str = "none"):
    """:math:`W_p` (column convention) for ``kind`` from the moments; ``pred`` has ``power``,
    ``eps``, ``ridge``, ``visser_step`` (:class:`~dynsim.networks.sim.NetPredictorParams`).
    ``n_iter`` is the iteration count of the iterative kinds (static)."""
    if kind in SPECTRAL:
        Wp = spectral_map(S11, lambda s: predictor_eigenvalues(kind, s, pred, norm))
    elif kind in CROSS:
        S21 = jnp.swapaxes(S12, -1, -2)
        S = _sym(S11)
        if kind == "lrp":
            # W_p = S21 S11^{-1}  <=>  S11 W_p^T = S12 (symmetric solve)
            Wp = jnp.swapaxes(jnp.linalg.solve(S, S12), -1, -2)
        else:
            if ne_norm != "none":
                scale = (jnp.max(jnp.linalg.eigvalsh(S), axis=-1)[..., None, None] if ne_norm == "max"
                         else jnp.sqrt(jnp.sum(S * S, axis=(-2, -1), keepdims=True)))
                S, S21 = S / scale, S21 / scale
            Wp = 2 * S21 - S21 @ S
    elif kind == "visser":
        Wp = visser(_sym(S11), n_iter, pred.visser_step)
    elif kind == "ns":
        Wp = ns_sqrt(_sym(S11), n_iter)
    elif kind == "ns2":
        Wp = ns_sqrt(_sym(ns_sqrt(_sym(S11), n_iter)), n_iter)
    elif kind == "stiefel":
        Wp = stiefel(_sym(S11), n_iter)
    else:
        raise ValueError(f"unknown closed-form predictor {kind!r}; choose one of {CLOSED_FORMS}")
    return Wp + pred.ridge * jnp.eye(Wp.shape[-1], dtype=Wp.dtype)


DEFAULT_ITERATIONS = {"visser": 50, "ns": 9, "ns2": 7, "stiefel": 9}


def check_options(kind: str, norm: str, ne_norm: str) -> None:
    """Raise ``ValueError`` for an unknown DirectSet ``norm`` or NE ``ne_norm``."""
    _checks.check_choice("norm", norm, NORMS)
    _checks.check_choice("ne_norm", ne_norm, NE_NORMS)
