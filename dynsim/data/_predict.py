r"""Per-mode predictions from a data set's view moments: which modes a model keeps, their end strengths and escape
times, from the eigenmode theory on the moments' modes (`docs/theory/views.md#augmentations`)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from dynsim.data._moments import ViewMoments
from dynsim.solvers import solve


def mode_predictions(moments: ViewMoments, model, params, t1: float, *, w0: float = 0.1, wp0: float | None = None,
                     threshold: float = 1e-6, saves: int = 200, method: str = "rk45", rtol: float = 1e-8,
                     atol: float = 1e-12) -> dict:
    r"""Run the per-mode `model` ([`SSLModes`][dynsim.eigenmodes.SSLModes] or [`TianModes`][dynsim.eigenmodes.TianModes]
    with its `params`) on the modes of `moments` ([`ViewMoments.modes`][dynsim.data.ViewMoments.modes]) from
    $w = $ `w0` (and a trainable predictor from `wp0`, default `w0`) to `t1`.

    Returns a dict: `strength` (the end strengths $w_j^2$, by mode in the basis's order, decreasing $\gamma_j$),
    `survives` (`strength > threshold`), `escape_time` (the first time each strength reaches half its end value;
    NaN for a mode that does not survive), `ts` and `strengths` (the trajectory, `(T, M)`), `basis` (`(n, M)`, the
    modes as input directions), `mode_data` and `commuting_error` (how far the moments are from sharing the basis:
    the predictions are exact only where it is round-off)."""
    data, basis, error = moments.modes()
    M = basis.shape[1]
    w = jnp.full(M, float(w0))
    trainable = getattr(model, "predictor", None) == "trainable"
    y0 = model.initial_state(w, w_p=jnp.full(M, float(w0 if wp0 is None else wp0))) if trainable \
        else model.initial_state(w)
    ts = np.linspace(0.0, float(t1), int(saves) + 1)
    sol = solve(model, y0, (params, data), float(t1), saveat=ts, method=method, rtol=rtol, atol=atol)
    c = np.asarray(sol.ys.w) ** 2
    end = c[-1]
    survives = end > threshold
    escape = np.full(M, np.nan)
    for j in np.flatnonzero(survives):
        k = int(np.argmax(c[:, j] >= 0.5 * end[j]))
        escape[j] = ts[k] if k == 0 else np.interp(0.5 * end[j], c[k - 1:k + 1, j], ts[k - 1:k + 1])
    return {"strength": end, "survives": survives, "escape_time": escape, "ts": ts, "strengths": c,
            "basis": basis, "mode_data": data, "commuting_error": error}
