r"""Theory vs simulation: run the eigenmode theory and a network simulation of one configuration
and measure how far apart their mode spectra are.

The eigenmode theory of a network is the [`Modes`][dynsim.models.Modes] model with the same components
([`mode_theory`][dynsim.compare.mode_theory], [`dynsim.models.reduce_to_modes`][dynsim.models.reduce_to_modes]). It applies for data whose moments share the
start's input directions (isotropic data $\Sigma_x = aI$, $\Sigma_n = bI$ always do:
$\lambda_s = a+b$, $\lambda_d = a$), a predictor that shares the eigenbasis of $F = WW^\top$
(trainable from an aligned start, Tian et al. 2021; spectral closed forms, Halvagal et al. 2023), and an EMA
target proportional to the online network at the start.

**Error measure.** With $c(t)$ the ascending eigenvalues of $WW^\top$ (simulation) and
$w^2$ (theory) at the saved times,

$$
\mathrm{err} = \max_t \frac{\max_j |c^\mathrm{sim}_j(t) - c^\mathrm{th}_j(t)|}{\max_j c^\mathrm{th}_j(t)},
$$

relative to the leading mode so that collapsing modes do not divide by zero.

**Order of GD.** GD on exact expected gradients is explicit Euler on the flow (`dynsim.networks.ssl_net`),
so its error is $O(\mathrm{lr})$: [`gd_order`][dynsim.compare.gd_order] fits $\log_2(\mathrm{err}(\mathrm{lr})/\mathrm{err}(\mathrm{lr}/2))$, expected ≈ 1.
For the cosine losses the theory's expectation uses other quadrature nodes than the network's, so
the default reference there is the network's own flow (`reference="flow"`), which isolates the
time-discretisation error; `"theory"` measures both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dynsim import _checks
from dynsim.models import NetState, reduce_to_modes
from dynsim.networks import NetParams, SSLNet, ViewData, flow, train
from dynsim.networks import as_network
from dynsim.params import view_noises
from dynsim.solvers import solve

TIGHT = dict(method="dopri8", rtol=1e-11, atol=1e-13, step_to_saves=True)


def aligned_start(rng, n1: int, n2: int, c0, p0=None, target_ratio: float = 0.0, rotate_outputs: bool = True):
    r"""An aligned initial state: $W_0 = U\,\mathrm{diag}(\sqrt{c_0})\,V^\top$, $W_{p,0} = U\,\mathrm{diag}(p_0)\,U^\top$,
    $W_{a,0} = \tau_0 W_0$, with random orthonormal `U` (n2×n2) and `V` (n1×n2) from `rng`
    (a `numpy.random.Generator`); `rotate_outputs=False`: $U = I$, each output along one mode, as a loss that is not
    rotation invariant (VICReg) needs. Returns `(W0, Wp0, Wa0)`; `Wp0` is `None` without `p0`."""
    if n2 > n1:
        raise ValueError(f"n2 = {n2} must be <= n1 = {n1}")
    U = np.linalg.qr(rng.standard_normal((n2, n2)))[0]
    if not rotate_outputs:
        U = np.eye(n2)
    V = np.linalg.qr(rng.standard_normal((n1, n2)))[0]
    W0 = (U * np.sqrt(np.asarray(c0, float))) @ V.T
    Wp0 = None if p0 is None else (U * np.asarray(p0, float)) @ U.T
    return W0, Wp0, target_ratio * W0


def mode_theory(net, y0: NetState, args):
    """The eigenmode model, its `args` ([`ModeData`][dynsim.params.ModeData]) and initial
    [`ModeState`][dynsim.models.ModeState] of this network configuration ([`dynsim.models.reduce_to_modes`][dynsim.models.reduce_to_modes] on
    the network's own components); `ValueError` (saying why) where the per-mode theory does not apply."""
    network, data = as_network(net, args)
    return reduce_to_modes(network, y0, data)


@dataclass(frozen=True)
class Agreement:
    """Spectra of theory and simulation on common times, and their $\\mathrm{err}$ (module docstring)."""

    ts: np.ndarray
    theory: np.ndarray  # (T, n2) ascending
    simulation: np.ndarray  # (T, n2) ascending, or (S, T, n2) for several seeds
    max_rel_error: float
    method: str


def _spectrum(W):
    W = np.asarray(W)
    return np.linalg.eigvalsh(W @ np.swapaxes(W, -1, -2))


def spectrum_error(sim, theory) -> float:
    """$\\max_t \\max_j |c^{sim} - c^{th}| / \\max_j c^{th}$ (module docstring)."""
    sim, theory = np.asarray(sim), np.asarray(theory)
    return float(np.max(np.max(np.abs(sim - theory), axis=-1) / np.max(np.abs(theory), axis=-1)))


def theory_spectrum(net, y0: NetState, args, ts) -> np.ndarray:
    """Ascending theory spectra $c_j(t)$ at `ts` (a tight dopri8 solve of [`mode_theory`][dynsim.compare.mode_theory])."""
    modes, margs, y0m = mode_theory(net, y0, args)
    ts = np.asarray(ts, float)
    sol = solve(modes, y0m, margs, float(ts[-1]), saveat=ts, **TIGHT)
    return np.sort(np.asarray(sol.ys.w) ** 2, axis=-1)


def agreement(net, y0: NetState, args, t1: float, *, method: str = "flow", lr: float | None = None,
              batch: int | None = None, seed=0, n_saves: int = 20) -> Agreement:
    """Run the theory and the network (`method`: `"flow"`, `"gd"` or `"sgd"` with `lr` and
    `batch`) to time `t1` and compare their spectra at `n_saves + 1` common times."""
    if method not in ("flow", "gd", "sgd"):
        raise ValueError(f"unknown method {method!r}; choose 'flow', 'gd' or 'sgd'")
    mode_theory(net, y0, args)  # raises before the simulation runs where no eigenmode theory applies
    if method == "flow":
        ts = np.linspace(0.0, float(t1), n_saves + 1)
        sim = _spectrum(flow(net, y0, args, float(t1), saveat=ts, **TIGHT).ys.W)
    else:
        if lr is None:
            raise ValueError(f"method {method!r} needs a learning rate lr")
        if method == "sgd" and batch is None:
            raise ValueError("method 'sgd' needs a batch size")
        steps = int(round(float(t1) / float(lr)))
        n_saves = max(1, min(n_saves, steps))
        while steps % n_saves:
            n_saves -= 1
        run = train(net, y0, args, lr, steps, batch=batch if method == "sgd" else None, seed=seed, n_saves=n_saves)
        ts = np.asarray(run.ts if run.time_axis == 0 else run.ts[0])
        sim = _spectrum(run.ys.W)
    th = theory_spectrum(net, y0, args, ts)
    return Agreement(ts=ts, theory=th, simulation=sim, max_rel_error=spectrum_error(sim, th), method=method)


def gd_order(net, y0: NetState, args, t1: float, lrs=(0.04, 0.02, 0.01), reference: str = "auto") -> dict:
    """Error of exact-gradient GD at time `t1` for each learning rate (halving), against the theory
    or the network flow (`reference`), and the fitted orders between successive rates."""
    if reference == "auto":  # the theory's expectation is exact for second-moment losses only
        reference = "theory" if as_network(net, args)[0].loss.quadratic else "flow"
    if reference not in ("theory", "flow"):
        raise ValueError(f"unknown reference {reference!r}; choose 'theory', 'flow' or 'auto'")
    if reference == "theory":
        ref = theory_spectrum(net, y0, args, [0.0, float(t1)])[-1]
    else:
        ref = _spectrum(flow(net, y0, args, float(t1), **TIGHT).final.W)
    lrs = np.asarray(lrs, float)
    errs = []
    for lr in lrs:
        run = train(net, y0, args, float(lr), int(round(float(t1) / lr)), static_steps=False)  # one program
        errs.append(spectrum_error(_spectrum(run.final.W)[None], ref[None]))
    errs = np.asarray(errs)
    orders = np.log(errs[:-1] / errs[1:]) / np.log(lrs[:-1] / lrs[1:])
    return {"lrs": lrs, "errors": errs, "orders": orders, "reference": reference}


def default_setup(n1: int = 8, n2: int = 4, seed: int = 0, loss: str = "euclidean", predictor: str = "trainable",
                  target: str = "ema", sigma2: float = 0.5, alpha_p: float = 1.0, beta: float = 0.4, wd: float = 0.01,
                  predictor_input: str = "features", power: float = 1.0, eps: float = 0.0, n_nodes: int = 4096,
                  views: str = "same", sigma2_target: float | None = None, stop_gradient: bool = True):
    """A ready configuration for [`agreement`][dynsim.compare.agreement] (the setting of Tian et al. 2021's check by default: n1=8, n2=4,
    σ²=0.5, α_p=1, η=0.01, β=0.4): `(net, y0, args)` with an aligned start, c0 spread over [0.05, 0.6],
    p0 = 0.1 and an EMA target starting at W(0) for cosine losses, 0 for Euclidean ones. `views`
    (`dynsim.params.VIEWS`): which view carries the noise `sigma2` (`per_view`: the target view
    `sigma2_target`); `stop_gradient=False` lets the gradient through the target (`target="online"` only)."""
    n1, n2 = _checks.check_count("n1", n1), _checks.check_count("n2", n2)
    if n2 > n1:
        raise ValueError(f"n2 must be <= n1 (an aligned start needs n2 orthonormal input directions), got n1={n1}, n2={n2}")
    net = SSLNet(loss=loss, predictor=predictor, target=target, predictor_input=predictor_input, n_nodes=n_nodes,
                 stop_gradient=stop_gradient)
    data = (ViewData.isotropic(n1, sigma2) if views == "same"
            else ViewData.views(n1, *view_noises(views, sigma2, sigma2_target)))
    args = (NetParams(alpha_p=alpha_p, beta=beta, wd=wd, wd_p=wd, power=power, eps=eps), data)
    rng = np.random.default_rng(seed)
    model = net.family(args[0])
    tau0 = 1.0 if model.loss.needs_direction else 0.0
    W0, Wp0, Wa0 = aligned_start(rng, n1, n2, np.linspace(0.05, 0.6, n2), np.full(n2, 0.1), tau0,
                                 rotate_outputs=model.loss.rotation_invariant)
    y0 = net.initial_state(W0, Wp0 if model.predictor.trainable else None, Wa0, args=args)
    return net, y0, args
