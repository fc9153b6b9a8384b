r"""What a sweep can run: adapters from a flat dict of traced scalars to one simulation.

Each adapter is a frozen (hashable, hence static under `jit`) dataclass holding the model's
*structural* options (branches, sizes) and names its sweepable float parameters in `PARAMS` with
their defaults. `simulate` maps `(p, key, recipe)` — `p` a dict of scalar (traced) values,
`key` the configuration's PRNG key — to a [`Trajectory`][dynsim.sweeps.Trajectory] of two spectra at the save times:

* `strength` $s_j(t)$, the eigenvalues of $WW^\top$ (the collapse observable), and
* `variance` $v_j(t)$, the eigenvalues of the representation covariance $W\Sigma_xW^\top$
  of clean inputs, whose square roots are the singular values of Li et al.'s collapse metric
  (Li et al. 2022).

| kind | model |
|---|---|
| `tian_modes` | [`dynsim.eigenmodes.TianModes`][dynsim.eigenmodes.TianModes] (Tian et al. 2021 App. D.4, Eqs. 11-13) |
| `ssl_modes` | [`dynsim.eigenmodes.SSLModes`][dynsim.eigenmodes.SSLModes] (Euclidean / cosine, closed-form predictors, IsoLoss; Halvagal et al. 2023) |
| `network` | [`dynsim.networks.SSLNet`][dynsim.networks.SSLNet] expected-gradient flow of a linear network (online, predictor, target matrices; Tian Lemma 1 generalised) |
| `grassmann` | [`dynsim.grassmann.OjaFlow`][dynsim.grassmann.OjaFlow] (orthogonality constrained) or [`dynsim.grassmann.NaiveFlow`][dynsim.grassmann.NaiveFlow] on a trace-form loss (Esser et al. 2023) |
| `modes` | [`dynsim.Modes`][dynsim.models.Modes] assembled from components named in `[model]` (built-in names or `"package.module:Class"` for components written outside dynsim); its sweepable parameters are the model's own float leaves, by path (`weight_decay`, `target.beta`, `predictor.alpha_p`, `loss.mu`, ...) |
| `net` | [`dynsim.Network`][dynsim.models.Network] from components, its expected-gradient flow on isotropic views; parameters as `modes` (the model's float leaves by path) |

Data of the mode models: $\lambda_{d,j} = (j+1)^{-\mathrm{data\_decay}}$,
$\lambda_{s,j} = (1+\sigma^2)\lambda_{d,j}$ (isotropic, Tian's Assumption 2, when `data_decay = 0`);
the network runs on isotropic views. The `views` option (`dynsim.params.VIEWS`, `docs/theory/views.md`) says which view
carries the noise: `same` (default: both, variance `sigma2`), `clean_online` (only the target view, variance
`sigma2`: Halvagal et al.'s toy) or `per_view` (online `sigma2`, target `sigma2_target`, a parameter only
then). Initial states use the configuration's key only through the `init_std` / `init_scale` noise, so
results never depend on chunking or devices.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import asdict, dataclass, fields
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dynsim import _checks, components
from dynsim._pytree import is_parameter
from dynsim.models import Modes, Network
from dynsim.eigenmodes import ModeState, PredictorParams, SSLModes, TianModes
from dynsim.networks import NetParams, SSLNet, ViewData
from dynsim.params import VIEWS, ModeData, TianParams, view_noises
from dynsim.solvers import CollapseEvent, SolverConfig, integrate
from dynsim.sweeps._errors import ConfigError


class Trajectory(NamedTuple):
    """One configuration's saved spectra. Shapes: `ts (T,)`, `strength`/`variance` `(T, M)`
    (descending per save), `status` and `event_time` scalars ([`dynsim.solvers.Status`][dynsim.solvers.Status]), and
    `loss (T,)`, the expected loss at the saves (`None` for a kind without one: `grassmann`)."""

    ts: jax.Array
    strength: jax.Array
    variance: jax.Array
    status: jax.Array
    event_time: jax.Array
    loss: jax.Array | None = None


@dataclass(frozen=True)
class Recipe:
    """Static settings shared by every configuration of a sweep (hashable: part of the compiled function)."""

    model: object
    t1: float
    saves: int
    solver: SolverConfig
    collapse: str = "all"  # "all": terminating event when every s_j <= threshold; "none": no event
    threshold: float = 1e-6
    auc_squared: bool = False
    fp_fraction: float = 0.9
    wrt: tuple = ()  # parameters to differentiate the outcomes by ([sensitivity])
    outcomes: tuple = ()  # the summaries differentiated (dynsim.sweeps.metrics.DIFFERENTIABLE)
    reverse: bool = False  # reverse mode (diffrax methods) instead of forward mode


def _all_modes_strength(y: ModeState):
    """`max_j w_j^2` as a length-1 vector: [`CollapseEvent`][dynsim.solvers.CollapseEvent] fires when *every* mode is below θ."""
    return jnp.max(jnp.asarray(y.w) ** 2, axis=-1, keepdims=True)


def _network_strength(y):
    """Largest eigenvalue of $WW^\\top$ (length-1 vector) for the complete-collapse event."""
    return jnp.linalg.eigvalsh(y.W @ y.W.T)[-1:]


def _desc(x):
    return jnp.flip(jnp.sort(x, axis=-1), axis=-1)


def mode_data(p, n_modes: int, views: str = "same") -> ModeData:
    r"""$\lambda_{d,j} = (j+1)^{-\mathrm{data\_decay}}$, $\ell_{11,j} = (1+\sigma_1^2)\lambda_{d,j}$,
    $\ell_{22,j} = (1+\sigma_2^2)\lambda_{d,j}$ with the views' noises ([`dynsim.params.view_noises`][dynsim.params.view_noises])
    (`same`: $\lambda_{s,j} = (1+\sigma^2)\lambda_{d,j}$, `lambda_2` unset)."""
    lam_d = jnp.arange(1, n_modes + 1, dtype=jnp.result_type(float)) ** (-p["data_decay"])
    if views == "same":
        return ModeData(lambda_s=(1.0 + p["sigma2"]) * lam_d, lambda_d=lam_d)
    s1, s2 = view_noises(views, p["sigma2"], p.get("sigma2_target"))
    return ModeData(lambda_s=(1.0 + s1) * lam_d, lambda_d=lam_d, lambda_2=(1.0 + s2) * lam_d)


def view_data(p, n1: int, views: str = "same") -> ViewData:
    r"""Isotropic network views, $\Sigma_x = I$, noise $\sigma_1^2I$ and $\sigma_2^2I$ per view
    ([`dynsim.params.view_noises`][dynsim.params.view_noises]; `same`: one `noise_cov`)."""
    if views == "same":
        eye = jnp.eye(n1, dtype=jnp.result_type(float))
        return ViewData(eye, p["sigma2"] * eye)
    return ViewData.views(n1, *view_noises(views, p["sigma2"], p.get("sigma2_target")))


def _check_nonneg(values, names):
    for n in names:
        _checks.check_positive(n, values[n], strict=False)


class _Adapter:
    """Shared plumbing. An adapter with a `MODEL` class holds an instance of it as `ode`: the `[model]`
    table's keys are that class's own options (plus the adapter's sizes), so nothing is declared twice."""

    kind: ClassVar[str]
    BASE_PARAMS: ClassVar[dict[str, float]]  # sweepable parameters and their defaults, before the views' own
    MODEL: ClassVar[type | None] = None

    @property
    def PARAMS(self) -> dict:  # noqa: N802 (the adapters' common name)
        """Sweepable parameters and their defaults."""
        return self.BASE_PARAMS | self.view_parameters

    @property
    def view_parameters(self) -> dict:
        """`{"sigma2_target": 0.0}` with `views = "per_view"`, else nothing."""
        return {"sigma2_target": 0.0} if getattr(self, "views", "same") == "per_view" else {}

    def _check_views(self) -> None:
        if self.views not in VIEWS:
            raise ValueError(f"views must be one of {', '.join(VIEWS)}, got {self.views!r}")

    def resolved_options(self) -> dict:
        own = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "ode"}
        ode = asdict(self.ode) if self.MODEL is not None else {}
        return {"kind": self.kind} | {k: v for k, v in (ode | own).items() if v is not None}

    @property
    def state_size(self) -> int:
        return 3 * self.n_modes

    def boundary(self, x: str, y: str, fixed: dict):
        """Analytic collapse boundary in the `(x, y)` plane as `y = f(x)` (or `None`)."""
        return None

    has_loss: ClassVar[bool] = True  #: whether its trajectories carry the expected loss (the `loss` summaries)

    def used_parameters(self) -> set[str]:
        """The parameter names this model reads (a title lists only these)."""
        return set(self.PARAMS)

    def field(self, p, key):
        """`(model, y0, args)`: the vector field `model(t, y, args)`, the start and the arguments `simulate`
        integrates for the values `p` (model kinds with an autonomous vector field; fixed points are found on it)."""
        raise NotImplementedError(f"model kind {self.kind!r} exposes no vector field (kinds that do: modes, "
                                  f"tian_modes, ssl_modes, net, network)")


_MODE_PARAMS = {"alpha_p": 1.0, "beta": 1.0, "eta": 0.0, "tau": 1.0, "sigma2": 0.0, "data_decay": 0.0,
                "w0": 0.5, "wp0": 0.5, "tau0": 0.0, "init_std": 0.0}


def start_normals(key, shape, dtype):
    """Standard normals for a configuration's start: drawn in float32 and cast to `dtype`, so a seed gives the
    same start (to float32 resolution) in every precision and a collapse verdict does not flip with it."""
    return jax.random.normal(key, shape, jnp.float32).astype(dtype)


def _mode_start(p, key, n_modes, dtype):
    """`w_j(0) = w0 + init_std ξ_j`, `w_{p,j}(0) = wp0 + init_std ξ'_j` (ξ: `start_normals` from `key`)."""
    xi = start_normals(key, (2, n_modes), dtype)
    return p["w0"] + p["init_std"] * xi[0], p["wp0"] + p["init_std"] * xi[1]


def _tian_boundary(x, y, fixed, target, n_modes, views="same"):
    r"""Tian et al. (2021) Obs. 5: with a fixed target ratio τ (`fixed_tau`; SimSiam is
    τ = 1) mode j collapses for every start iff $\eta > \tau^2\ell_{12,j}^2/(4\ell_{11,j})
    = \tau^2\lambda_{d,j}/(4(1+\sigma_1^2))$ ($\sigma_1^2$ the online view's noise, `docs/theory/views.md`;
    0 for `clean_online`), so the whole representation does iff $\eta > \tau^2\max_j\lambda_{d,j}/(4(1+\sigma_1^2))$
    (below it, collapse depends on the start: the line is the boundary for starts inside $p^*_+$'s basin).
    Returned as `eta = f(x)` for the planes (σ², η) and (τ, η) when the other parameters are fixed, else `None`."""
    if target not in ("fixed_tau", "online") or y != "eta" or "data_decay" not in fixed:
        return None
    lam_max = max(1.0, float(n_modes) ** (-fixed["data_decay"]))  # max_j (j+1)^(-decay)
    if target == "online":
        fixed = fixed | {"tau": 1.0}
    online = 0.0 if views == "clean_online" else 1.0  # how sigma2 enters the online view's noise
    if x == "sigma2" and "tau" in fixed:
        return lambda s: fixed["tau"] ** 2 * lam_max / (4 * (1 + online * s))
    if x == "tau" and target == "fixed_tau" and "sigma2" in fixed:
        return lambda t: t**2 * lam_max / (4 * (1 + online * fixed["sigma2"]))
    return None


def _check_target_direction(model, v: dict) -> None:
    """A loss that needs a direction (cosine) with an EMA target needs `tau0 > 0` (a zero target has none)."""
    if model.loss.needs_direction and isinstance(model.target, components.EMA) and np.any(np.asarray(v["tau0"]) == 0):
        raise ValueError(f"the {type(model.loss).__name__.lower()} loss with an EMA target needs tau0 > 0 (a zero "
                         "target has no direction)")


def _tian_boundary_of(model, x, y, fixed, n_modes, views="same"):
    """`_tian_boundary` where it applies: the Euclidean loss (not IsoLoss) with a trainable predictor and
    the stop-gradient (Tian et al. 2021's setting), else `None`."""
    if not (isinstance(model.loss, components.Euclidean) and not model.loss.iso and model.predictor.trainable
            and model.target.stop_gradient):
        return None
    return _tian_boundary(x, y, fixed, model.target.name, n_modes, views)


class _PresetSweep(_Adapter):
    """An option-string kind (`tian_modes`, `ssl_modes`, `network`): its `ode` is a preset, and it runs the
    component-built adapter of the model the preset names (`family_sweep`), with its parameter names mapped
    to the model's paths by `NAMES` (names the model does not have, e.g. `beta` without an EMA target, are
    accepted and unused)."""

    NAMES: ClassVar[dict]

    def family_sweep(self) -> "_FamilySweep":
        raise NotImplementedError

    def used_parameters(self) -> set[str]:
        family = self.family_sweep()
        return ({name for name, path in self.NAMES.items() if path in family.PARAMS} | set(family.START)
                | set(self.view_parameters))

    def _family_values(self, p, family: "_FamilySweep") -> dict:
        known = family.PARAMS
        return ({path: p[name] for name, path in self.NAMES.items() if path in known}
                | {k: p[k] for k in set(family.START) | set(self.view_parameters)})

    @property
    def n_modes(self) -> int:
        return self.family_sweep().n_modes

    @property
    def state_size(self) -> int:
        return self.family_sweep().state_size

    @property
    def rhs_work_factor(self) -> int:
        return self.family_sweep().rhs_work_factor

    def event(self, recipe):
        return self.family_sweep().event(recipe)

    def simulate(self, p, key, recipe: Recipe) -> Trajectory:
        family = self.family_sweep()
        return family.simulate(self._family_values(p, family), key, recipe)

    def field(self, p, key):
        family = self.family_sweep()
        return family.field(self._family_values(p, family), key)


@dataclass(frozen=True)
class TianModesSweep(_PresetSweep):
    """`tian_modes`: options of [`TianModes`][dynsim.eigenmodes.TianModes] plus `n_modes`.

    Parameters: `alpha_p, beta, eta, tau` ([`TianParams`][dynsim.params.TianParams]), `sigma2`,
    `data_decay` ([`mode_data`][dynsim.sweeps.mode_data]), start `w0, wp0` (+ `init_std` noise) and `tau0` =
    $w_a(0)/w(0)$ of an EMA target (Tian's τ(0) = 0)."""

    kind: ClassVar[str] = "tian_modes"
    BASE_PARAMS: ClassVar[dict] = _MODE_PARAMS
    MODEL: ClassVar[type] = TianModes
    ode: TianModes = TianModes()
    n_modes: int = 64
    views: str = "same"

    def __post_init__(self):
        if self.n_modes < 1:
            raise ValueError(f"n_modes must be >= 1, got {self.n_modes}")
        self._check_views()

    NAMES: ClassVar[dict] = {"alpha_p": "predictor.alpha_p", "beta": "target.beta", "eta": "weight_decay",
                             "tau": "target.tau"}

    def check_values(self, v: dict) -> None:
        TianParams(v["alpha_p"], v["beta"], v["eta"], v["tau"]).validate()
        _check_nonneg(v, ("sigma2", "init_std", *self.view_parameters))

    def args(self, p):
        return (TianParams(p["alpha_p"], p["beta"], p["eta"], p["tau"]), mode_data(p, self.n_modes, self.views))

    def family_sweep(self) -> "ModesSweep":
        return ModesSweep(ode=self.ode.family(), n_modes=self.n_modes, views=self.views)

    def boundary(self, x, y, fixed):
        return _tian_boundary_of(self.ode.family(), x, y, fixed, self.n_modes, self.views)


def _mode_trajectory(ode, y0, args, recipe: Recipe, event, data: ModeData) -> Trajectory:
    dtype = jnp.result_type(float)
    ts = jnp.linspace(0.0, recipe.t1, recipe.saves, dtype=dtype)
    sol = integrate(ode, y0, args, 0.0, recipe.t1, ts, recipe.solver, event)
    s = sol.ys.w**2
    loss = jax.vmap(lambda y: ode.expected_loss(y, data))(sol.ys)
    return Trajectory(ts, _desc(s), _desc(s * data.lambda_d), sol.status, sol.event_time, loss)


@dataclass(frozen=True)
class SSLModesSweep(_PresetSweep):
    """`ssl_modes`: options of [`SSLModes`][dynsim.eigenmodes.SSLModes] plus `n_modes`; parameters as
    `tian_modes` plus the closed-form predictor's `power` and `eps`."""

    kind: ClassVar[str] = "ssl_modes"
    BASE_PARAMS: ClassVar[dict] = _MODE_PARAMS | {"power": 1.0, "eps": 0.0}
    MODEL: ClassVar[type] = SSLModes
    ode: SSLModes = SSLModes()
    n_modes: int = 16
    views: str = "same"

    def __post_init__(self):
        if self.n_modes < 1:
            raise ValueError(f"n_modes must be >= 1, got {self.n_modes}")
        self._check_views()

    def check_values(self, v: dict) -> None:
        TianParams(v["alpha_p"], v["beta"], v["eta"], v["tau"]).validate()
        PredictorParams(v["power"], v["eps"]).validate()
        _check_nonneg(v, ("sigma2", "init_std", *self.view_parameters))
        _check_target_direction(self.ode.family(), v)

    NAMES: ClassVar[dict] = TianModesSweep.NAMES | {"power": "predictor.power", "eps": "predictor.eps"}

    def family_sweep(self) -> "ModesSweep":
        return ModesSweep(ode=self.ode.family(), n_modes=self.n_modes, views=self.views)

    def boundary(self, x, y, fixed):
        return _tian_boundary_of(self.ode.family(), x, y, fixed, self.n_modes, self.views)


@dataclass(frozen=True)
class NetworkSweep(_PresetSweep):
    r"""`network`: the expected-gradient flow of [`SSLNet`][dynsim.networks.SSLNet] on isotropic views
    ($\Sigma_x = I$, noise $\sigma^2 I$ in the views `views` names) with `n1` inputs and `n2` outputs.

    Start: $W(0) = \mathrm{init\_scale}\,\xi/\sqrt{n_1}$ (ξ standard normal from the configuration's
    key), $W_p(0) = \mathrm{wp0}\,I$, $W_a(0) = \mathrm{tau0}\,W(0)$ (EMA target).
    Parameters `alpha_p, beta, wd, wd_p, power, eps` as [`NetParams`][dynsim.networks.NetParams]."""

    kind: ClassVar[str] = "network"
    BASE_PARAMS: ClassVar[dict] = {"alpha_p": 1.0, "beta": 1.0, "wd": 0.0, "wd_p": 0.0, "sigma2": 0.0, "power": 1.0,
                              "eps": 0.0, "init_scale": 1.0, "wp0": 0.5, "tau0": 0.0}
    MODEL: ClassVar[type] = SSLNet
    ode: SSLNet = SSLNet()
    n1: int = 8
    n2: int = 4
    views: str = "same"

    NAMES: ClassVar[dict] = {"alpha_p": "predictor.alpha_p", "beta": "target.beta", "wd": "weight_decay",
                             "wd_p": "predictor_weight_decay", "power": "predictor.power", "eps": "predictor.eps"}

    def __post_init__(self):
        if self.n1 < 1 or self.n2 < 1:
            raise ValueError(f"n1 and n2 must be >= 1, got {self.n1}, {self.n2}")
        self._check_views()

    def family_sweep(self) -> "NetSweep":
        return NetSweep(ode=self.ode.family(), n1=self.n1, n2=self.n2, views=self.views)

    def check_values(self, v: dict) -> None:
        NetParams(alpha_p=v["alpha_p"], beta=v["beta"], wd=v["wd"], wd_p=v["wd_p"], power=v["power"],
                  eps=v["eps"]).validate()
        _check_nonneg(v, ("sigma2", "init_scale", *self.view_parameters))
        _check_target_direction(self.ode.family(), v)

    def boundary(self, x, y, fixed):
        return None


def _frame_strength(W):
    """Largest eigenvalue of $W^\\top W$ (length-1 vector) for the complete-collapse event."""
    return jnp.linalg.eigvalsh(W.T @ W)[-1:]


@dataclass(frozen=True)
class GrassmannSweep(_Adapter):
    r"""`grassmann`: an encoder $W\in\mathbb R^{d\times h}$ on a trace-form loss (Esser et al. 2023) with the
    population dynamics matrix of additive augmentation, $x\sim N(0,\Sigma)$,
    $\Sigma = \mathrm{diag}((1+i)^{-\mathrm{data\_decay}})$, $x^+ = x + \mathrm{noise}\,\Sigma^{1/2}\xi$
    (Esser et al. (2023)'s augmentation): $A = 2\Sigma$ (`contrastive` / `alignment`, independent
    negatives) or $A = -2\,\mathrm{noise}^2\Sigma$ (`mse`); as
    [`dynsim.grassmann.trace_losses.population_dynamics_matrix`][dynsim.grassmann.population_dynamics_matrix] with `GRADIENT_FACTOR = 2`.

    `flow`: `"oja"` (orthogonality constrained, [`OjaFlow`][dynsim.grassmann.OjaFlow]; $W(0)$ = qf of the
    draw), `"naive"` ($\dot W = (A - \gamma I)W$, γ = `weight_decay`; grows like
    $e^{t(\lambda_1-\gamma)}$, so long runs without decay overflow and are flagged `NONFINITE`) or
    `"sphere"` (the naive flow on the Frobenius sphere), [`NaiveFlow`][dynsim.grassmann.NaiveFlow].
    $W(0) = \mathrm{init\_scale}\,\xi/\sqrt d$. Spectra: `strength` = eigenvalues of $W^\top W$,
    `variance` = eigenvalues of $W^\top\Sigma W$."""

    kind: ClassVar[str] = "grassmann"
    has_loss: ClassVar[bool] = False
    BASE_PARAMS: ClassVar[dict] = {"data_decay": 1.0, "noise": 0.3, "weight_decay": 0.0, "init_scale": 1.0}
    loss: str = "contrastive"
    flow: str = "oja"
    d: int = 30
    h: int = 4

    def __post_init__(self):
        from dynsim.grassmann import LOSSES

        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.flow not in ("oja", "naive", "sphere"):
            raise ValueError(f"flow must be 'oja', 'naive' or 'sphere', got {self.flow!r}")
        if not 1 <= self.h <= self.d:
            raise ValueError(f"need 1 <= h <= d, got h={self.h}, d={self.d}")

    @property
    def n_modes(self) -> int:
        return self.h

    @property
    def state_size(self) -> int:
        return self.d * self.h

    @property
    def rhs_work_factor(self) -> int:
        return self.d

    def check_values(self, v: dict) -> None:
        _check_nonneg(v, ("noise", "init_scale", "weight_decay"))
        if np.any(np.asarray(v["init_scale"]) == 0):
            raise ValueError("init_scale must be > 0 (W(0) = 0 has no direction)")

    def event(self, recipe):
        return CollapseEvent(_frame_strength, recipe.threshold) if recipe.collapse == "all" else None

    def simulate(self, p, key, recipe: Recipe) -> Trajectory:
        from dynsim.grassmann import GRADIENT_FACTOR, NaiveFlow, OjaFlow, qf

        dtype = jnp.result_type(float)
        sigma = jnp.arange(1, self.d + 1, dtype=dtype) ** (-p["data_decay"])
        A = GRADIENT_FACTOR * jnp.diag(-(p["noise"] ** 2) * sigma if self.loss == "mse" else sigma)
        W0 = p["init_scale"] * start_normals(key, (self.d, self.h), dtype) / np.sqrt(self.d)
        if self.flow == "oja":
            ode, W0, args = OjaFlow(), qf(W0), A
        elif self.flow == "sphere":
            ode, W0, args = NaiveFlow(sphere=True), W0 / jnp.sqrt(jnp.sum(W0 * W0)), (A, p["weight_decay"])
        else:
            ode, args = NaiveFlow(), (A, p["weight_decay"])
        ts = jnp.linspace(0.0, recipe.t1, recipe.saves, dtype=dtype)
        sol = integrate(ode, W0, args, 0.0, recipe.t1, ts, recipe.solver, self.event(recipe))
        W = sol.ys
        gram = jnp.swapaxes(W, -1, -2) @ W
        cov = jnp.swapaxes(W, -1, -2) @ (sigma[:, None] * W)
        return Trajectory(ts, _desc(jnp.linalg.eigvalsh(gram)), _desc(jnp.linalg.eigvalsh(cov)), sol.status,
                          sol.event_time)


def parameter_paths(model) -> dict[str, float]:
    """The model's float leaves by dotted path (`{"weight_decay": 0.0, "target.beta": 1.0, ...}`): the names
    under which a sweep sets them."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(model)[0]:
        name = ".".join(str(getattr(k, "name", k)) for k in path)
        if is_parameter(leaf) and np.ndim(leaf) == 0:
            out[name] = float(leaf)
    return out


def with_parameters(model, values: dict):
    """`model` with the float leaves named in `values` (dotted paths, [`parameter_paths`][dynsim.sweeps.parameter_paths]) replaced."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(model)
    new = [values.get(".".join(str(getattr(k, "name", k)) for k in path), leaf) for path, leaf in leaves]
    return jax.tree_util.tree_unflatten(treedef, new)


_COMPONENT_KINDS = {"loss": (components.LOSSES, components.AbstractLoss),
                    "predictor": (components.PREDICTORS, components.AbstractPredictor),
                    "target": (components.TARGETS, components.AbstractTarget),
                    "expectation": (components.EXPECTATIONS, components.AbstractExpectation)}


def _component_class(role: str, name: str):
    registry, base = _COMPONENT_KINDS[role]
    if ":" in name:  # a component written outside dynsim: "package.module:Class"
        module, _, attr = name.partition(":")
        try:
            cls = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise ConfigError(f"model.{role} = {name!r}: cannot import it ({e})") from None
    elif name in registry:
        cls = registry[name]
    else:
        raise ConfigError(f"unknown model.{role} {name!r}; choose one of {', '.join(registry)} or give "
                          f"'package.module:Class'")
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigError(f"model.{role} = {name!r} is not a subclass of dynsim.components.{base.__name__}")
    return cls


def _component_name(role: str, component) -> str:
    registry, _ = _COMPONENT_KINDS[role]
    cls = type(component)
    for name, known in registry.items():
        if known is cls:
            return name
    return f"{cls.__module__}:{cls.__qualname__}"


def build_component(role: str, spec):
    """A component from its config spec: a name, or a table `{kind = name, <options>}`; floats given here are
    the defaults of the corresponding sweep parameters."""
    if isinstance(spec, str):
        spec = {"kind": spec}
    if not isinstance(spec, dict) or not isinstance(spec.get("kind"), str):
        raise ConfigError(f"model.{role} must be a name or a table {{kind = name, ...}}, got {spec!r}")
    options = {k: v for k, v in spec.items() if k != "kind"}
    try:
        return _component_class(role, spec["kind"])(**options)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"model.{role}: {e}") from None


def component_options(role: str, component) -> dict:
    """The TOML spec of a component: its name and static options (its floats are sweep parameters; options left at
    `None`, a default chosen by the precision, are omitted)."""
    static = {f.name: getattr(component, f.name) for f in dataclasses.fields(component) if f.metadata.get("static")}
    # None is a component's "default for the precision" (which the config records): omitted, as TOML has no None
    return {"kind": _component_name(role, component)} | {k: v for k, v in static.items() if v is not None}


class _FamilySweep(_Adapter):
    """Shared by the adapters of component-built models: `ode` is the model; its float leaves by path plus
    `START` (data and start) are the parameters; `SIZES` are the integer options besides the components."""

    START: ClassVar[dict]
    SIZES: ClassVar[dict]
    FLAGS: ClassVar[tuple] = ()  # boolean static options of the model class

    @property
    def BASE_PARAMS(self) -> dict:  # noqa: N802 (the adapters' common name)
        return parameter_paths(self.ode) | self.START

    def resolved_options(self) -> dict:
        parts = {role: component_options(role, getattr(self.ode, role)) for role in _COMPONENT_KINDS}
        sizes = {k: getattr(self, k) for k in self.SIZES}
        flags = {k: getattr(self.ode, k) for k in self.FLAGS}
        extra = {} if self.ode.predictor_weight_decay is None else {"predictor_weight_decay": True}
        return {"kind": self.kind} | sizes | parts | flags | extra | {"views": self.views}

    @property
    def rhs_work_factor(self) -> int:
        return self.ode.rhs_work_factor

    def check_values(self, v: dict) -> None:
        _check_nonneg(v, tuple(k for k in ("sigma2", "sigma2_target", "init_std", "init_scale") if k in v))
        with_parameters(self.ode, {k: np.asarray(x) for k, x in v.items()}).check()
        _check_target_direction(self.ode, v)

    @classmethod
    def from_options(cls, opts: dict):
        opts = dict(opts)
        sizes = {k: opts.pop(k, d) for k, d in cls.SIZES.items()}
        for k, v in sizes.items():
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"model.{k} must be an integer >= 1, got {v!r}")
        views = opts.pop("views", "same")
        if views not in VIEWS:
            raise ConfigError(f"model.views must be one of {', '.join(VIEWS)}, got {views!r}")
        allowed = set(_COMPONENT_KINDS) | set(cls.FLAGS) | {"predictor_weight_decay"}
        unknown = sorted(set(opts) - allowed)
        if unknown:
            raise ConfigError(f"unknown option(s) {unknown} for model kind {cls.kind!r}; options: "
                              f"{sorted(allowed | set(cls.SIZES) | {'views'})}")
        for k in set(cls.FLAGS) | {"predictor_weight_decay"}:
            if k in opts and not isinstance(opts[k], bool):
                raise ConfigError(f"model.{k} must be true or false, got {opts[k]!r}")
        parts = {role: build_component(role, opts[role]) for role in _COMPONENT_KINDS if role in opts}
        flags = {k: opts[k] for k in cls.FLAGS if k in opts}
        try:
            ode = cls.MODEL(**parts, **flags, predictor_weight_decay=0.0 if opts.get("predictor_weight_decay") else None)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"[model] {cls.kind}: {e}") from None
        return cls(ode=ode, views=views, **sizes)


@dataclass(frozen=True)
class ModesSweep(_FamilySweep):
    """`modes`: a [`dynsim.Modes`][dynsim.models.Modes] from components; parameters are the model's float leaves by path plus
    the data (`sigma2`, `data_decay`, and `sigma2_target` with `views = "per_view"`: [`mode_data`][dynsim.sweeps.mode_data]) and the start (`w0`, `wp0` + `init_std` noise,
    `tau0` = $w_a(0)/w(0)$ of an EMA target)."""

    kind: ClassVar[str] = "modes"
    MODEL: ClassVar[type] = Modes
    START: ClassVar[dict] = {"sigma2": 0.0, "data_decay": 0.0, "w0": 0.5, "wp0": 0.5, "tau0": 0.0, "init_std": 0.0}
    SIZES: ClassVar[dict] = {"n_modes": 16}
    ode: Modes = Modes()
    n_modes: int = 16
    views: str = "same"

    def event(self, recipe):
        return CollapseEvent(_all_modes_strength, recipe.threshold) if recipe.collapse == "all" else None

    def field(self, p, key):
        """`(model, y0, data)`: the vector field, start and data `simulate` integrates for the values `p`."""
        model = with_parameters(self.ode, p)
        data = mode_data(p, self.n_modes, self.views)
        w, wp = _mode_start(p, key, self.n_modes, jnp.result_type(float))
        return model, model.initial_state(w, wp, p["tau0"] * w, data=data), data

    def simulate(self, p, key, recipe: Recipe) -> Trajectory:
        model, y0, data = self.field(p, key)
        return _mode_trajectory(model, y0, data, recipe, self.event(recipe), data)


@dataclass(frozen=True)
class NetSweep(_FamilySweep):
    r"""`net`: the expected-gradient flow of a [`dynsim.Network`][dynsim.models.Network] from components on isotropic views
    ($\Sigma_x = I$, noise $\sigma^2 I$ in the views `views` names: [`view_data`][dynsim.sweeps.view_data]) with `n1`
    inputs and `n2` outputs; parameters are the model's float leaves by path plus `sigma2` (and
    `sigma2_target` with `views = "per_view"`) and the start: $W(0) = \mathrm{init\_scale}\,\xi/\sqrt{n_1}$
    (ξ from the configuration's key), $W_p(0) = \mathrm{wp0}\,I$ (trainable), $W_a(0) = \mathrm{tau0}\,W(0)$ (EMA)."""

    kind: ClassVar[str] = "net"
    MODEL: ClassVar[type] = Network
    START: ClassVar[dict] = {"sigma2": 0.0, "init_scale": 1.0, "wp0": 0.5, "tau0": 0.0}
    SIZES: ClassVar[dict] = {"n1": 8, "n2": 4}
    FLAGS: ClassVar[tuple] = ("symmetric_loss",)
    ode: Network = Network()
    n1: int = 8
    n2: int = 4
    views: str = "same"

    @property
    def n_modes(self) -> int:
        return self.n2

    @property
    def state_size(self) -> int:
        return 2 * self.n2 * self.n1 + 3 * self.n2 * self.n2

    def event(self, recipe):
        return CollapseEvent(_network_strength, recipe.threshold) if recipe.collapse == "all" else None

    def field(self, p, key):
        """`(model, y0, data)`: the vector field, start and views `simulate` integrates for the values `p`."""
        dtype = jnp.result_type(float)
        model = with_parameters(self.ode, p)
        data = view_data(p, self.n1, self.views)
        W = p["init_scale"] * start_normals(key, (self.n2, self.n1), dtype) / np.sqrt(self.n1)
        wp = p["wp0"] * jnp.eye(self.n2, dtype=dtype) if model.predictor.trainable else None
        y0 = model.initial_state(W, wp, p["tau0"] * W if isinstance(model.target, components.EMA) else None, data)
        return model, y0, data

    def simulate(self, p, key, recipe: Recipe) -> Trajectory:
        dtype = jnp.result_type(float)
        model, y0, data = self.field(p, key)
        ts = jnp.linspace(0.0, recipe.t1, recipe.saves, dtype=dtype)
        sol = integrate(model, y0, data, 0.0, recipe.t1, ts, recipe.solver, self.event(recipe))
        s = _desc(jnp.linalg.eigvalsh(sol.ys.W @ jnp.swapaxes(sol.ys.W, -1, -2)))
        loss = jax.vmap(lambda y: model.expected_loss(y, data))(sol.ys)
        return Trajectory(ts, s, s, sol.status, sol.event_time, loss)  # Sigma_x = I: variance = strength


ADAPTERS = {cls.kind: cls for cls in (TianModesSweep, SSLModesSweep, NetworkSweep, GrassmannSweep, ModesSweep,
                                         NetSweep)}
KINDS = tuple(ADAPTERS)


def build_model(options: dict):
    """The adapter for `options = {"kind": ..., <static options>}`: the options of the adapter's model class
    (e.g. [`SSLModes`][dynsim.eigenmodes.SSLModes]) and its own sizes. Raises `ConfigError` naming unknown kinds,
    unknown options and options of the wrong type or value."""
    opts = dict(options)
    kind = opts.pop("kind", None)
    if kind not in ADAPTERS:
        raise ConfigError(f"unknown model kind {kind!r}; choose one of {', '.join(KINDS)}")
    cls = ADAPTERS[kind]
    if hasattr(cls, "from_options"):
        return cls.from_options(opts)
    own = {f.name: f for f in fields(cls) if f.name != "ode"}
    inner = {f.name: f for f in fields(cls.MODEL)} if cls.MODEL is not None else {}
    unknown = sorted(set(opts) - set(own) - set(inner))
    if unknown:
        raise ConfigError(f"unknown option(s) {unknown} for model kind {kind!r}; options: {sorted(own | inner)} "
                          f"(float parameters go in [params] / [grid]: {sorted(cls.BASE_PARAMS)})")
    for k, v in opts.items():
        default = (own | inner)[k].default
        want = type(default)
        if default is None:
            continue
        if want is bool and not isinstance(v, bool) or want is int and (not isinstance(v, int) or isinstance(v, bool)) \
                or want is str and not isinstance(v, str):
            raise ConfigError(f"model.{k} must be of type {want.__name__}, got {v!r}")
    try:
        if cls.MODEL is None:
            return cls(**opts)
        ode = cls.MODEL(**{k: v for k, v in opts.items() if k in inner})
        return cls(ode=ode, **{k: v for k, v in opts.items() if k in own})
    except (ValueError, TypeError) as e:
        raise ConfigError(f"[model] {kind}: {e}") from None
