r"""Closed-form predictors at matrix level, named by the option strings of [`SSLNet`][dynsim.networks.SSLNet].

Each string names a component of [`dynsim.components`][dynsim.components], where its formula is defined once for both
levels; this module maps the strings and [`NetParams`][dynsim.networks.NetParams] to those components.

Every predictor here is a function of two $n_2\times n_2$ moments of the predictor input
$z_1 = W x_1$ and the target output $z_2$:

* `S11` $= E[z_1 z_1^\top]$ (uncentred; Richemond's $\Sigma = Z_\theta^\top Z_\theta / b$),
* `S12` $= E[z_1 z_2^\top]$ (Richemond's $Z_\theta^\top Z'_\xi / b$; only LRP and NE use it),

and returns $W_p$ in dynsim's **column convention** $p = W_p z_1$. Richemond et al. write
rows, $Z P$, so $W_p = P^\top$ (Richemond et al. 2023). Gradients never flow
through these maps (the caller applies `stop_gradient`).

| `kind` | $W_p$ | source |
|---|---|---|
| `"power"` | $U\,\mathrm{diag}(\vert s\vert ^{\alpha} + \varepsilon)\,U^\top$ | Halvagal et al. 2023 toy (α = 1, ε = 0) |
| `"directpred_paper"` | $U\,\mathrm{diag}(\sqrt{s} + \varepsilon\max s)\,U^\top$ | Tian et al. 2021, Eq. 18 |
| `"directpred_code"` | $U\,\mathrm{diag}(\max(\sqrt{s/\max s} + \varepsilon, 10^{-4}))U^\top$ | Tian et al. 2021's reference code (`compute_w_corr`; `docs/theory/tian2021.md`) |
| `"directset"` | $(S/\Vert S\Vert )^{\alpha} + \varepsilon I$; DirectCopy is α = 1 | Wang et al. 2021 |
| `"lrp"` | $S_{21} S_{11}^{-1}$ ($P^* = S_{11}^{-1}S_{12}$) | Richemond et al. 2023 (Grill et al.; `docs/theory/richemond_li_wang.md#lrp`) |
| `"ne"` | $2S_{21} - S_{21}S_{11}$ ($P = 2S_{12} - S_{11}S_{12}$) | Richemond et al. 2023, Prop. 4 |
| `"visser"` | $P_{k+1} = P_k + h(\Sigma - P_k^2)$, $P_0 = I/(2h)$, n steps | Richemond et al. 2023, Prop. 6 |
| `"ns"` | coupled Newton–Schulz, n steps, $A_n\sqrt{\Vert \Sigma\Vert _F}$ | Richemond et al. 2023, Prop. 7 (n = 9) |
| `"ns2"` | `ns` applied twice ($\approx\Sigma^{1/4}$), n steps each | Richemond et al. 2023 (n = 7) |
| `"stiefel"` | $B_n\Sigma/\Vert B_n\Vert _F$, NS on $\Sigma^2$, n steps | Richemond et al. 2023, Prop. 10 (n = 9) |

$s, U$ are the eigenvalues/vectors of the symmetrised `S11`. The finite-iteration
predictors (Visser, NS, NS², Stiefel) are **spectral filters at their iteration counts**, not their
limits (Richemond et al. 2023): `ns_filter`, `stiefel_filter` and
`visser_filter` give the scalar maps for tests and figures.

**Unconfirmed details, exposed as parameters** (`NetPredictorParams`): the ridge (`+ rI`
added to every closed form), Visser's step `h` and count, NE's normalisation (`ne_norm`,
static: `"none"` default, or divide both moments by `max s` / `‖S11‖_F` first), DirectSet's
normalisation (`norm`), the NS² rescaling between stages (the second stage runs on the first
stage's output and renormalises by its own Frobenius norm, as NS does).
"""

from __future__ import annotations

from dynsim import _checks
from dynsim import components as cp
from dynsim.components import newton_schulz, ns_filter, ns_sqrt, spectral_map, stiefel, stiefel_filter, visser, visser_filter
from dynsim.eigenmodes import KINDS, NORMS, spectral_predictor

SPECTRAL = KINDS
ITERATIVE = ("visser", "ns", "ns2", "stiefel")
CROSS = ("lrp", "ne")
CLOSED_FORMS = SPECTRAL + CROSS + ITERATIVE
NE_NORMS = cp.NE_NORMS
DEFAULT_ITERATIONS = {kind: cp.PREDICTORS[kind].__dataclass_fields__["n_iter"].default for kind in ITERATIVE}

__all__ = ["CLOSED_FORMS", "CROSS", "DEFAULT_ITERATIONS", "ITERATIVE", "NE_NORMS", "SPECTRAL", "check_options",
           "closed_form_predictor", "network_predictor", "newton_schulz", "ns_filter", "ns_sqrt", "spectral_map",
           "stiefel", "stiefel_filter", "visser", "visser_filter"]


def network_predictor(kind: str, params, *, input: str = "features", norm: str = "max", ne_norm: str = "none",
                      n_iter: int | None = None, freq: int = 1) -> cp.AbstractPredictor:
    """The predictor component named `kind` (an [`SSLNet`][dynsim.networks.SSLNet] predictor string) with the
    values of `params` ([`NetParams`][dynsim.networks.NetParams]: `alpha_p`, `power`, `eps`, `ridge`,
    `rho`, `pred_ema`, `visser_step`)."""
    if kind in ("trainable", "symmetric"):
        return cp.Trainable(alpha_p=params.alpha_p, symmetric=kind == "symmetric")
    if kind == "identity":
        return cp.Identity()
    _checks.check_choice("closed-form predictor", kind, CLOSED_FORMS)
    common = dict(ridge=params.ridge, rho=params.rho, pred_ema=params.pred_ema, alpha_p=params.alpha_p, freq=freq,
                  input=input)
    iters = {} if n_iter is None else {"n_iter": int(n_iter)}
    if kind == "visser":
        return cp.Visser(step=params.visser_step, **iters, **common)
    if kind in ITERATIVE:
        return cp.PREDICTORS[kind](**iters, **common)
    if kind == "lrp":
        return cp.LRP(**common)
    if kind == "ne":
        return cp.NE(norm=ne_norm, **common)
    return spectral_predictor(kind, params, norm=norm, **common)


def closed_form_predictor(kind: str, S11, S12, pred, *, n_iter: int, norm: str = "max", ne_norm: str = "none"):
    """$W_p$ (column convention) for `kind` from the moments; `pred` has `power`, `eps`, `ridge`,
    `visser_step` ([`NetParams`][dynsim.networks.NetParams]). `n_iter` is the iteration count of the iterative kinds."""
    if kind not in CLOSED_FORMS:
        raise ValueError(f"unknown closed-form predictor {kind!r}; choose one of {CLOSED_FORMS}")
    component = network_predictor(kind, pred, norm=norm, ne_norm=ne_norm, n_iter=n_iter if kind in ITERATIVE else None)
    return component(S11, S12)


def check_options(kind: str, norm: str, ne_norm: str) -> None:
    """Raise `ValueError` for an unknown DirectSet `norm` or NE `ne_norm`."""
    _checks.check_choice("norm", norm, NORMS)
    _checks.check_choice("ne_norm", ne_norm, NE_NORMS)
