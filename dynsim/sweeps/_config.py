r"""Sweep configurations: a TOML file (stdlib `tomllib`) → a validated [`SweepConfig`][dynsim.sweeps.SweepConfig].

Layout (every section but `[model]` is optional; `dynsim sweep examples` lists full examples, which
`dynsim sweep --example NAME` runs)::

    name = "tian_boundary"      # run folder runs/<name> unless --out is given
    seed = 0                    # root seed: configuration i uses fold_in(PRNGKey(seed), i)
    precision = "float64"       # default: the process's (dynsim --float32 gives float32); must match it

    [model]                     # kind + its static (structural) options, see dynsim.sweeps.models
    kind = "tian_modes"
    target = "fixed_tau"
    n_modes = 8
    views = "same"              # noised views: "same" | "clean_online" | "per_view" (+ sigma2_target)

    [params]                    # fixed values of sweepable (traced) parameters
    tau = 1.0

    [solve]   t1 = 100.0, saves = 21, method = "rk45", rtol, atol, max_steps
    [metrics] collapse_threshold = 1e-6, collapse = "all" | "none", auc = "sigma" | "sigma2", fp_fraction = 0.9
    [run]     chunk_size = 64, on_failure = "warn" | "raise" | "flag" (what a failed solve does)
    [sensitivity]  wrt = ["eta"], outcomes = ["final_spectrum", ...], mode = "forward" | "reverse"
                   (derivatives stored beside the summaries as d_<outcome>_d_<parameter>)
    [boundary]     parameter = "eta", bracket = [0.0, 0.5], criterion = "collapsed", level, rtol, atol, scan,
                   log, max_iter: a boundary search (`dynsim boundary`) along each configuration, a ray

    [grid]                      # cartesian product, in the order written (first = slowest)
    eta = { start = 0.0, stop = 0.3, num = 31 }      # linspace; log = true for geomspace
    sigma2 = [0.0, 0.5, 1.0]                         # or explicit values

    [zip]                       # lists of equal length swept together: one axis "zip"
    tau = [0.5, 1.0]
    beta = [0.1, 1.0]

    [random]                    # n independent draws: one axis "sample"
    n = 100
    alpha_p = { low = 0.5, high = 2.0, log = true }  # uniform, or log-uniform

The configurations are the product grid × zip × random, flattened in C order (`np.ravel_multi_index`
over `SweepConfig.shape`). Random draws come from `numpy.random.default_rng([seed, 1])`, so the
expanded values depend on the file alone. Errors (unknown keys, wrong types, bad ranges, parameters
both fixed and swept, values the model rejects) are raised as [`ConfigError`][dynsim.sweeps.ConfigError] before anything runs.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dynsim.solvers import DEFAULTS, METHODS, ON_FAILURE
from dynsim.sweeps import _models
from dynsim.sweeps._errors import ConfigError

TOP_KEYS = ("name", "seed", "precision", "model", "params", "solve", "metrics", "run", "grid", "zip", "random",
            "sensitivity", "boundary")
PRECISIONS = ("float64", "float32")
SOLVE_DEFAULTS = {"t1": 100.0, "saves": 21, "method": DEFAULTS.batch_method, "rtol": None, "atol": None,
                  "max_steps": DEFAULTS.max_steps}
METRIC_DEFAULTS = {"collapse_threshold": 1e-6, "collapse": "all", "auc": "sigma", "fp_fraction": 0.9}
RUN_DEFAULTS = {"chunk_size": 64, "on_failure": DEFAULTS.sweep_on_failure}
SWEEP_METHODS = tuple(m for m in METHODS if m != "rk4" and not m.startswith("scipy:"))  # adaptive JAX methods
COLLAPSE_RULES = ("all", "none")
MAX_CONFIGS = 10**8  #: most configurations one sweep may expand to (checked before anything is allocated)
LARGE_SWEEP = 10**6  #: the CLI asks for --yes above this many configurations
AUC_KINDS = ("sigma", "sigma2")
SENSITIVITY_MODES = ("forward", "reverse")
BOUNDARY_DEFAULTS = {"criterion": "collapsed", "level": 1.0, "rtol": 1e-8, "atol": 0.0, "scan": 9, "log": False,
                     "max_iter": 64}
SENSITIVITY_DEFAULTS = {"outcomes": ["final_spectrum", "collapse_time", "auc", "effective_rank"], "mode": "forward"}


EXAMPLES = Path(__file__).parent / "examples"  #: packaged example configs (`dynsim sweep examples`)




def example_path(name: str) -> Path:
    """Path of the packaged example `name` (a file stem in `EXAMPLES`)."""
    path = EXAMPLES / f"{name}.toml"
    if not path.is_file():
        names = sorted(p.stem for p in EXAMPLES.glob("*.toml"))
        raise FileNotFoundError(f"no example {name!r}; examples: {', '.join(names)}")
    return path


def _integer(where: str, x, lo: int, note: str = "") -> int:
    """`x` if it is an integer (not a bool) `>= lo`, else a [`ConfigError`][dynsim.sweeps.ConfigError] naming `where`."""
    if not isinstance(x, int) or isinstance(x, bool) or x < lo:
        raise ConfigError(f"{where} must be an integer >= {lo}{note}, got {x!r}")
    return x


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _number(where: str, x) -> float:
    if not _is_number(x):
        raise ConfigError(f"{where} must be a number, got {x!r} ({type(x).__name__})")
    if not math.isfinite(float(x)):
        raise ConfigError(f"{where} must be finite, got {x!r}")
    return float(x)


def _check_keys(where: str, table: dict, allowed) -> None:
    if not isinstance(table, dict):
        raise ConfigError(f"[{where}] must be a table, got {table!r}")
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in [{where}]; allowed: {sorted(allowed)}")


def _log_flag(where: str, spec: dict) -> bool:
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}.log must be true or false, got {log!r}")
    return log


def grid_values(name: str, spec) -> np.ndarray:
    """Values of one `[grid]` entry: a non-empty list of numbers, or `{start, stop, num, log=false}`
    (`numpy.linspace` / `numpy.geomspace`, both ends included)."""
    where = f"grid.{name}"
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"{where} is an empty list")
        return np.array([_number(f"{where}[{i}]", v) for i, v in enumerate(spec)])
    if isinstance(spec, dict):
        _check_keys(where, spec, ("start", "stop", "num", "log"))
        missing = {"start", "stop", "num"} - set(spec)
        if missing:
            raise ConfigError(f"{where} needs start, stop and num (missing {sorted(missing)})")
        start, stop = _number(f"{where}.start", spec["start"]), _number(f"{where}.stop", spec["stop"])
        num = _integer(f"{where}.num", spec["num"], 1)
        if _log_flag(where, spec):
            if start <= 0 or stop <= 0:
                raise ConfigError(f"{where}: log spacing needs start > 0 and stop > 0, got {start}, {stop}")
            return np.geomspace(start, stop, num)
        return np.linspace(start, stop, num)
    raise ConfigError(f"{where} must be a list of numbers or {{start, stop, num}}, got {spec!r}")


def random_values(table: dict, seed: int) -> dict[str, np.ndarray]:
    """`[random]`: `n` draws of each `name = {low, high, log=false}` (uniform or log-uniform)."""
    n = _integer("random.n", table.get("n"), 1)
    rng = np.random.default_rng([int(seed), 1])
    out = {}
    for name in sorted(k for k in table if k != "n"):  # sorted: draws do not depend on key order
        spec, where = table[name], f"random.{name}"
        if not isinstance(spec, dict):
            raise ConfigError(f"{where} must be {{low, high, log=false}}, got {spec!r}")
        _check_keys(where, spec, ("low", "high", "log"))
        if "low" not in spec or "high" not in spec:
            raise ConfigError(f"{where} needs low and high")
        lo, hi = _number(f"{where}.low", spec["low"]), _number(f"{where}.high", spec["high"])
        if not lo < hi:
            raise ConfigError(f"{where}: low must be < high, got low={lo}, high={hi}")
        log = _log_flag(where, spec)
        if log and lo <= 0:
            raise ConfigError(f"{where}: log sampling needs low > 0, got {lo}")
        u = rng.random(n)
        out[name] = np.exp(np.log(lo) + u * (np.log(hi) - np.log(lo))) if log else lo + u * (hi - lo)
    if not out:
        raise ConfigError("[random] needs at least one parameter besides n")
    return out


@dataclass(frozen=True)
class Axis:
    """One dimension of the sweep: a grid parameter, the `zip` group or the `sample` group."""

    name: str
    values: dict  # parameter name -> (size,) array

    @property
    def size(self) -> int:
        return len(next(iter(self.values.values())))


@dataclass(frozen=True)
class SweepConfig:
    """A validated sweep. `raw` is the resolved TOML table (defaults filled in) that is written to
    the run folder and hashed; `values` holds the flattened swept values, each shape `(N,)`."""

    raw: dict
    axes: tuple[Axis, ...] = field(default=())

    @property
    def name(self) -> str:
        return self.raw["name"]

    @property
    def seed(self) -> int:
        return self.raw["seed"]

    @property
    def model(self) -> dict:
        return self.raw["model"]

    @property
    def fixed(self) -> dict:
        return self.raw["params"]

    @property
    def solve(self) -> dict:
        return self.raw["solve"]

    @property
    def metrics(self) -> dict:
        return self.raw["metrics"]

    @property
    def sensitivity(self) -> dict:
        """The resolved `[sensitivity]` table (`wrt`, `outcomes`, `mode`), or `{}` without one."""
        return self.raw.get("sensitivity", {})

    @property
    def boundary(self) -> dict:
        """The resolved `[boundary]` table of a boundary search, or `{}` for a plain sweep."""
        return self.raw.get("boundary", {})

    @property
    def on_failure(self) -> str:
        return self.raw["run"]["on_failure"]

    @property
    def chunk_size(self) -> int:
        return self.raw["run"]["chunk_size"]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(a.size for a in self.axes)

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.axes)

    @property
    def n_configs(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.axes else 1

    @property
    def n_chunks(self) -> int:
        return -(-self.n_configs // self.chunk_size)

    @property
    def swept(self) -> tuple[str, ...]:
        return tuple(p for a in self.axes for p in a.values)

    @property
    def values(self) -> dict[str, np.ndarray]:
        """Every swept parameter's value per configuration, shape `(N,)`, in flattened C order."""
        out = {}
        for k, axis in enumerate(self.axes):
            for p, v in axis.values.items():
                shape = [1] * len(self.axes)
                shape[k] = axis.size
                out[p] = np.broadcast_to(np.asarray(v, float).reshape(shape), self.shape).ravel()
        return out

    def digest(self) -> str:
        """sha256 of the resolved table except `name` and `run.on_failure`: everything that determines the
        results and the chunk layout (the run folder and what a failure does are not part of it)."""
        body = {k: v for k, v in self.raw.items() if k != "name"}
        body["run"] = {k: v for k, v in body["run"].items() if k != "on_failure"}
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _set_key(table: dict, dotted: str, value) -> None:
    parts = dotted.split(".")
    if not all(parts):
        raise ConfigError(f"bad override key {dotted!r}")
    node = table
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted!r}: {p!r} is not a table")
    node[parts[-1]] = value


def _flatten(table: dict, spec_keys: set) -> dict:
    """Nested tables -> dotted names (TOML reads `target.beta = 1` as `{"target": {"beta": 1}}`); a table whose
    keys are all in `spec_keys` is a value (e.g. `{start, stop, num}`), not a level of nesting."""
    out = {}
    for k, v in table.items():
        if isinstance(v, dict) and v and not set(v) <= spec_keys:
            out.update({f"{k}.{kk}": vv for kk, vv in _flatten(v, spec_keys).items()})
        else:
            out[k] = v
    return out


def parse_override(text: str) -> tuple[str, object]:
    """`"solve.t1=50"` → `("solve.t1", 50)`; the value is read as TOML (`[0, 0.1]`, `"rk4"`,
    `true`, `{start=0, stop=1, num=5}`), falling back to a bare string."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value")
    key, value = (s.strip() for s in text.split("=", 1))
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    return key, parsed


def load_config(source, overrides=(), *, models=None) -> SweepConfig:
    """Read a sweep from a TOML path (or a dict), apply `overrides` (`"a.b=v"` strings or
    `(key, value)` pairs), fill in defaults and validate everything, including the parameter
    values against the model (`dynsim.sweeps.models`). Raises [`ConfigError`][dynsim.sweeps.ConfigError]."""

    models = _models if models is None else models
    if isinstance(source, dict):
        raw = copy.deepcopy(source)
        default_name = "sweep"
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"no sweep config at {path}")
        try:
            raw = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from None
        default_name = path.stem
    for ov in overrides:
        key, value = parse_override(ov) if isinstance(ov, str) else ov
        _set_key(raw, key, value)
    _check_keys("top level", raw, TOP_KEYS)
    for section, spec_keys in (("params", ()), ("grid", ("start", "stop", "num", "log")), ("zip", ()),
                               ("random", ("low", "high", "log"))):
        if isinstance(raw.get(section), dict):  # parameter paths: `target.beta = ...` is the parameter "target.beta"
            raw[section] = _flatten(raw[section], set(spec_keys))
    raw.setdefault("name", default_name)
    raw.setdefault("seed", 0)
    name = raw["name"]
    if not isinstance(name, str) or not name.strip() or re.search(r"[/\\\x00]", name) or name.startswith("."):
        raise ConfigError(f"name must be a plain folder name (runs/<name>: no '/', '\\' or leading '.'), got {name!r}")
    _integer("seed", raw["seed"], 0)

    if "model" not in raw or "kind" not in raw.get("model", {}):
        raise ConfigError(f"[model] with kind = ... is required; kinds: {', '.join(models.KINDS)}")
    model = models.build_model(raw["model"])  # validates kind and options (raises ConfigError)
    raw["model"] = model.resolved_options()

    for section, defaults in (("solve", SOLVE_DEFAULTS), ("metrics", METRIC_DEFAULTS), ("run", RUN_DEFAULTS)):
        table = raw.setdefault(section, {})
        _check_keys(section, table, defaults)
        for k, v in defaults.items():
            table.setdefault(k, v)
    raw.setdefault("precision", current_precision())
    if raw["precision"] not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {raw['precision']!r}")
    raw["solve"] = {k: v for k, v in raw["solve"].items() if v is not None}
    _check_solve(raw["solve"])
    # the tolerances the solver will use (defaults by precision), so the resolved table names them
    rtol, atol = DEFAULTS.tolerances(np.dtype(raw["precision"]), raw["solve"].get("rtol"), raw["solve"].get("atol"))
    raw["solve"]["rtol"], raw["solve"]["atol"] = float(rtol), float(atol)
    _check_metrics(raw["metrics"])
    _integer("run.chunk_size", raw["run"]["chunk_size"], 1)
    if raw["run"]["on_failure"] not in ON_FAILURE:
        raise ConfigError(f"run.on_failure must be one of {', '.join(ON_FAILURE)}, got {raw['run']['on_failure']!r}")

    params = raw.setdefault("params", {})
    _check_keys("params", params, model.PARAMS)
    fixed = {k: _number(f"params.{k}", params.get(k, d)) for k, d in model.PARAMS.items()}

    _check_size(raw)
    axes = []
    grid = raw.get("grid", {})
    _check_keys("grid", grid, model.PARAMS)
    for name, spec in grid.items():
        axes.append(Axis(name, {name: grid_values(name, spec)}))
    if raw.get("zip"):
        z = raw["zip"]
        _check_keys("zip", z, model.PARAMS)
        vals = {k: grid_values(k, v) if isinstance(v, list) else None for k, v in z.items()}
        for k, v in vals.items():
            if v is None:
                raise ConfigError(f"zip.{k} must be a list of numbers")
        if len({len(v) for v in vals.values()}) != 1:
            raise ConfigError(f"[zip] lists must have one length, got {({k: len(v) for k, v in vals.items()})}")
        axes.append(Axis("zip", vals))
    if raw.get("random"):
        rnd = raw["random"]
        _check_keys("random", rnd, set(model.PARAMS) | {"n"})
        axes.append(Axis("sample", random_values(rnd, raw["seed"])))
    seen: dict[str, str] = {}
    for a in axes:
        for p in a.values:
            if p in seen:
                raise ConfigError(f"parameter {p!r} is swept twice ([{seen[p]}] and [{a.name}])")
            seen[p] = a.name
    both = sorted(set(seen) & set(params))
    if both:
        raise ConfigError(f"{both} both fixed in [params] and swept; remove them from [params]")
    raw["params"] = {k: v for k, v in fixed.items() if k not in seen}
    if "sensitivity" in raw:
        raw["sensitivity"] = _check_sensitivity(raw["sensitivity"], model, raw["solve"]["method"])
    if "boundary" in raw:
        raw["boundary"] = _check_boundary(raw["boundary"], model, seen)
        searched = raw["boundary"]["parameter"]
        if searched in params:
            raise ConfigError(f"{searched!r} is both fixed in [params] and the boundary.parameter; remove it from "
                              f"[params]")
        del raw["params"][searched]  # the search sets it
    cfg = SweepConfig(raw=raw, axes=tuple(axes))
    try:
        if cfg.boundary:  # both ends of the bracket are valid values of the searched parameter
            for end in cfg.boundary["bracket"]:
                model.check_values(cfg.fixed | cfg.values | {cfg.boundary["parameter"]: np.array(end)})
        else:
            model.check_values(cfg.fixed | cfg.values)
    except ValueError as e:
        raise ConfigError(f"bad parameter values: {e}") from None
    return cfg


def _check_size(raw: dict) -> None:
    """The number of configurations from the specs alone (no values expanded): at most `MAX_CONFIGS`."""
    total = 1
    for name, spec in raw.get("grid", {}).items():
        if isinstance(spec, dict) and "num" in spec:
            total *= _integer(f"grid.{name}.num", spec["num"], 1)
        elif isinstance(spec, list):
            total *= max(len(spec), 1)
    lengths = [len(v) for v in raw.get("zip", {}).values() if isinstance(v, list)]
    total *= max(lengths, default=1)
    if raw.get("random"):
        total *= _integer("random.n", raw["random"].get("n"), 1)
    if total > MAX_CONFIGS:
        raise ConfigError(f"the sweep has {total:.3g} configurations, above the limit of {MAX_CONFIGS:.0e}: use fewer "
                          f"values, or split it into several sweeps")


def current_precision() -> str:
    """`"float64"` or `"float32"`: what this process computes in (JAX's x64 flag)."""
    import jax

    return "float64" if jax.config.jax_enable_x64 else "float32"


def _check_solve(s: dict) -> None:
    t1 = _number("solve.t1", s["t1"])
    if t1 <= 0:
        raise ConfigError(f"solve.t1 must be > 0, got {t1}")
    _integer("solve.saves", s["saves"], 2, " (t = 0 and t1 included)")
    if s["method"] not in SWEEP_METHODS:
        raise ConfigError(f"solve.method must be one of {', '.join(SWEEP_METHODS)}, got {s['method']!r}")
    for k in ("rtol", "atol"):
        if k in s and not _number(f"solve.{k}", s[k]) > 0:
            raise ConfigError(f"solve.{k} must be > 0")
    _integer("solve.max_steps", s["max_steps"], 1)


def _check_boundary(table: dict, model, swept) -> dict:
    """`[boundary]`: the searched `parameter` (a model parameter, not swept), its `bracket = [lo, hi]`, the
    `criterion` (`dynsim.sweeps.metrics.CRITERIA`) and its `level`, the tolerances `rtol`/`atol` (the search stops
    when the bracket is narrower than `atol + rtol |boundary|`), the `scan` points that bracket the switch
    (`log` spacing), and `max_iter` bisections at most; defaults filled in."""
    from dynsim.sweeps._metrics import CRITERIA

    _check_keys("boundary", table, ("parameter", "bracket") + tuple(BOUNDARY_DEFAULTS))
    table = BOUNDARY_DEFAULTS | table
    name = table.get("parameter")
    if name not in model.PARAMS:
        raise ConfigError(f"boundary.parameter must name a parameter of the model ({', '.join(sorted(model.PARAMS))}), "
                          f"got {name!r}")
    if name in swept:
        raise ConfigError(f"boundary.parameter {name!r} is also swept: the search sets it, remove it from the axes")
    br = table.get("bracket")
    if not isinstance(br, list) or len(br) != 2:
        raise ConfigError(f"boundary.bracket must be [low, high], got {br!r}")
    lo, hi = _number("boundary.bracket[0]", br[0]), _number("boundary.bracket[1]", br[1])
    if not lo < hi:
        raise ConfigError(f"boundary.bracket must have low < high, got {br}")
    if table["criterion"] not in CRITERIA:
        raise ConfigError(f"boundary.criterion must be one of {', '.join(CRITERIA)}, got {table['criterion']!r}")
    level = _number("boundary.level", table["level"])
    rtol, atol = _number("boundary.rtol", table["rtol"]), _number("boundary.atol", table["atol"])
    if rtol < 0 or atol < 0 or rtol == atol == 0:
        raise ConfigError(f"boundary.rtol and boundary.atol must be >= 0 and not both 0, got {rtol}, {atol}")
    scan = _integer("boundary.scan", table["scan"], 2)
    if not isinstance(table["log"], bool):
        raise ConfigError(f"boundary.log must be true or false, got {table['log']!r}")
    if table["log"] and lo <= 0:
        raise ConfigError(f"boundary.log needs a bracket above 0, got {br}")
    max_iter = _integer("boundary.max_iter", table["max_iter"], 1)
    return {"parameter": name, "bracket": [lo, hi], "criterion": table["criterion"], "level": level, "rtol": rtol,
            "atol": atol, "scan": scan, "log": table["log"], "max_iter": max_iter}


def _check_sensitivity(table: dict, model, method: str) -> dict:
    """`[sensitivity]`: `wrt` (parameters of the model, at least one), `outcomes` (`DIFFERENTIABLE` summaries) and
    `mode` (`forward`, or `reverse` with a diffrax method), defaults filled in."""
    from dynsim.sweeps._metrics import DIFFERENTIABLE

    _check_keys("sensitivity", table, ("wrt", "outcomes", "mode"))
    table = SENSITIVITY_DEFAULTS | table
    for key, allowed in (("wrt", model.PARAMS), ("outcomes", DIFFERENTIABLE)):
        names = table.get(key)
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise ConfigError(f"sensitivity.{key} must be a non-empty list of names, got {names!r}")
        unknown = sorted(set(names) - set(allowed))
        if unknown:
            raise ConfigError(f"sensitivity.{key}: unknown {unknown}; choose from {', '.join(sorted(allowed))}")
        if len(set(names)) != len(names):
            raise ConfigError(f"sensitivity.{key} names a value twice: {names}")
    if table["mode"] not in SENSITIVITY_MODES:
        raise ConfigError(f"sensitivity.mode must be one of {', '.join(SENSITIVITY_MODES)}, got {table['mode']!r}")
    if not model.has_loss and {"loss", "loss_t"} & set(table["outcomes"]):
        raise ConfigError(f"sensitivity.outcomes: model kind {model.kind!r} has no expected loss (loss, loss_t)")
    from dynsim.components import GaussianExact
    from dynsim.models import Network

    family = model.family_sweep() if hasattr(model, "family_sweep") else model
    ode = getattr(family, "ode", None)
    loss = getattr(ode, "loss", None)
    if getattr(loss, "iso", False) and isinstance(ode, Network):
        raise ConfigError("[sensitivity] is not available for IsoLoss networks: their per-sample gradient is defined "
                          "through stop_gradient, which also stops the derivatives with respect to the parameters "
                          "(the mode-level IsoLoss models, kinds modes and ssl_modes, have them)")
    if table["mode"] == "forward" and isinstance(getattr(ode, "resolved_expectation", None), GaussianExact):
        raise ConfigError("the exact cosine expectation is differentiated by a custom reverse rule: use "
                          "sensitivity.mode = 'reverse' with a diffrax method (solve.method = 'tsit5')")
    if table["mode"] == "reverse" and method == "rk45":
        raise ConfigError("sensitivity.mode = 'reverse' needs a diffrax method (solve.method = 'tsit5', 'dopri5', "
                          "...): the rk45 loop is differentiated in forward mode only")
    return table


def _check_metrics(m: dict) -> None:
    if not _number("metrics.collapse_threshold", m["collapse_threshold"]) > 0:
        raise ConfigError("metrics.collapse_threshold must be > 0")
    if m["collapse"] not in COLLAPSE_RULES:
        raise ConfigError(f"metrics.collapse must be one of {COLLAPSE_RULES}, got {m['collapse']!r}")
    if m["auc"] not in AUC_KINDS:
        raise ConfigError(f"metrics.auc must be one of {AUC_KINDS}, got {m['auc']!r}")
    f = _number("metrics.fp_fraction", m["fp_fraction"])
    if not 0 < f < 1:
        raise ConfigError(f"metrics.fp_fraction must be in (0, 1), got {f}")


# --- writing the resolved config back as TOML ------------------------------------------------
def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v) if not isinstance(v, float) or math.isfinite(v) else ("inf" if v > 0 else "-inf" if v < 0 else "nan")
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {v!r} as TOML")


def _toml_key(k: str) -> str:
    """A bare key, or a quoted one (`"target.beta"`: a parameter path, not a nested table)."""
    return k if k and all(c.isalnum() or c in "_-" for c in k) else json.dumps(k)


def to_toml(raw: dict) -> str:
    """The resolved table as TOML text (`tomllib.loads(to_toml(raw))`, flattened, `== raw`)."""
    lines = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in raw.items() if not isinstance(v, dict)]
    for k, v in raw.items():
        if isinstance(v, dict):
            lines += ["", f"[{k}]"] + [f"{_toml_key(kk)} = {_toml_value(vv)}" for kk, vv in v.items()]
    return "\n".join(lines) + "\n"
