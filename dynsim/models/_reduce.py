r"""From the network level to the eigenmode level: [`reduce_to_modes`][dynsim.models.reduce_to_modes].

A network state is *aligned* when $W = U\,\mathrm{diag}(w)\,V^\top$ with the columns of $V$
common eigenvectors of the data moments $X$ (cross-view) and $X + X'$ (same-view), a predictor
$W_p = U\,\mathrm{diag}(w_p)\,U^\top$ and a target $W_a = \tau_0 W$. The network flow keeps such
a state aligned, and in the basis $(U, V)$ each mode follows the eigenmode model built from the same
components ([`Modes`][dynsim.models.Modes]) with $\lambda_{d,m} = v_m^\top Xv_m$ and
$\lambda_{s,m} = v_m^\top(X+X')v_m$ (Tian et al. 2021, App. D.4; Halvagal et al. 2023;
the test suite checks it for every component combination that reduces).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from dynsim.components import EMA, AbstractClosedForm, Trainable
from dynsim.models._modes import Modes
from dynsim.models._network import Network
from dynsim.models._states import ModeState, NetState
from dynsim.params import ModeData

ALIGN_RTOL = 1e-8  #: relative tolerance of the alignment checks (round-off of a constructed aligned start is ~1e-15)


def _misaligned(residual, A) -> bool:
    """Whether `residual` exceeds `ALIGN_RTOL` times the largest entry of `A` (the alignment checks' one criterion)."""
    return np.max(np.abs(residual)) > ALIGN_RTOL * max(np.max(np.abs(A)), 1e-300)


def _off_diagonal(A):
    return A - np.diag(np.diag(A))


def _mode_moments(mats, U, W, w):
    """Per-mode Rayleigh quotients of each `(matrix, name)` in `mats` along the right singular vectors of `W`,
    or a `ValueError`."""
    n = mats[0][0].shape[0]
    if all(np.max(np.abs(a - a[0, 0] * np.eye(n))) <= 1e-12 * max(abs(a[0, 0]), 1.0) for a, _ in mats):
        return [np.full(len(w), a[0, 0]) for a, _ in mats]  # isotropic views: every direction is an eigenvector
    if np.any(w <= 0):
        raise ValueError("the eigenmode reduction with non-isotropic data needs W(0) of full row rank (each mode's "
                         "input direction is read from W(0))")
    V = (W.T @ U) / w  # (n1, n2) right singular vectors
    lam = []
    for a, name in mats:
        rayleigh = np.einsum("im,ij,jm->m", V, a, V)
        resid = np.linalg.norm(a @ V - V * rayleigh, axis=0)
        if _misaligned(resid, a):  # resid: the column norms, >= 0
            raise ValueError(f"the data moments do not commute with the start: the input directions of W(0) are not "
                             f"eigenvectors of {name} (the eigenmode theory needs W(0) = U diag(w) V^T with V common "
                             f"eigenvectors of the views' moments; a finite dataset's moment is rarely isotropic)")
        lam.append(rayleigh)
    return lam


def reduce_to_modes(net: Network, y0: NetState, data) -> tuple[Modes, ModeData, ModeState]:
    """The eigenmode model of `net`, its [`ModeData`][dynsim.params.ModeData] and the initial
    [`ModeState`][dynsim.models.ModeState] of `y0` (modes in ascending order of $WW^\\top$'s eigenvalues).

    Raises:
        ValueError: where the reduction does not apply, saying why: data moments not sharing the start's
            input directions, rotated outputs for a loss that is not rotation invariant (VICReg), a trainable predictor not aligned with $W(0)W(0)^\\top$, an EMA target not
            proportional to $W(0)$, a predictor without an eigenmode form (e.g. NS, LRP), or a closed form
            with a moment EMA, predictor EMA or `freq > 1` (the theory recomputes it at every instant).
    """
    if isinstance(net.predictor, AbstractClosedForm) and not net.predictor.instantaneous:
        raise ValueError("the eigenmode theory has instantaneous closed-form predictors: use rho = 0, pred_ema = 0, "
                         "freq = 1")
    modes = Modes(loss=net.loss, predictor=net.predictor, target=net.target, expectation=net.expectation,
                  weight_decay=net.weight_decay, predictor_weight_decay=net.predictor_weight_decay)
    W = np.asarray(y0.W)
    gram = W @ W.T
    if not net.loss.rotation_invariant and _misaligned(_off_diagonal(gram), gram):
        raise ValueError(f"the {type(net.loss).__name__} loss acts on each embedding coordinate, so its eigenmode theory "
                         "needs each output of W(0) along one mode: W(0) W(0)^T diagonal (W(0) = P diag(w) V^T with P "
                         "a signed permutation; dynsim.compare.aligned_start with rotate_outputs=False)")
    c0, U = np.linalg.eigh(gram)
    w0 = np.sqrt(np.maximum(c0, 0.0))
    X = np.asarray(data.input_moment)
    mats = [(X + np.asarray(data.noise_cov), "X + X'"), (X, "X")]
    if not data.symmetric:
        mats.append((X + np.asarray(data.target_noise), "the target view's moment"))
    lam = _mode_moments(mats, U, W, w0)
    mdata = ModeData(*(jnp.asarray(v) for v in lam))
    p0 = None
    if isinstance(net.predictor, Trainable):
        P = U.T @ np.asarray(y0.W_p) @ U
        if _misaligned(_off_diagonal(P), P):
            raise ValueError("the eigenmode theory needs an aligned start: W_p(0) must be symmetric and commute "
                             "with W(0)W(0)^T (see dynsim.compare.aligned_start)")
        p0 = np.diag(P)
    wa0 = None
    if isinstance(net.target, EMA):
        Wa = np.asarray(y0.W_a)
        tau0 = float(np.sum(Wa * W) / max(np.sum(W**2), 1e-300))
        if _misaligned(Wa - tau0 * W, Wa):
            raise ValueError("the eigenmode theory needs W_a(0) proportional to W(0) (e.g. 0, or a copy)")
        wa0 = tau0 * w0
    return modes, mdata, modes.initial_state(w0, p0, wa0, data=mdata)
