"""Parameter sweeps: TOML config → chunked, vmapped, sharded runs → run folders → summaries and plots.

* Configs: [`load_config`][dynsim.sweeps.load_config] (TOML schema, overrides, validation, axis expansion) → [`SweepConfig`][dynsim.sweeps.SweepConfig];
  packaged examples (`EXAMPLES`, [`example_path`][dynsim.sweeps.example_path]).
* Models: the sweep kinds (`ADAPTERS`; `modes` and `net` sweep any model of the family by its
  parameter paths, [`parameter_paths`][dynsim.sweeps.parameter_paths]), their data ([`mode_data`][dynsim.sweeps.mode_data], [`view_data`][dynsim.sweeps.view_data]; which view is
  noised: `VIEWS`) and their [`Trajectory`][dynsim.sweeps.Trajectory].
* Metrics: per-configuration summaries (collapse, Li et al.'s AUC [`collapse_auc`][dynsim.sweeps.collapse_auc], ranks).
* Runs: [`run_sweep`][dynsim.sweeps.run_sweep] (chunking, vmap, sharding over `jax.devices()`, parts, resume), [`describe`][dynsim.sweeps.describe].
* Results: run folders with atomic chunk files; [`load`][dynsim.sweeps.load] → [`SweepResult`][dynsim.sweeps.SweepResult], [`merge`][dynsim.sweeps.merge].
* Plots: [`phase_diagram`][dynsim.sweeps.phase_diagram], [`metric_curve`][dynsim.sweeps.metric_curve], [`spectra_over_time`][dynsim.sweeps.spectra_over_time], [`plot_run`][dynsim.sweeps.plot_run].
* Sensitivities: a `[sensitivity]` table adds the derivatives of the summaries with respect to chosen parameters,
  through the whole solve ([`derivative_name`][dynsim.sweeps.derivative_name]; `docs/guide/sensitivities.md`).
* Boundaries without grids: a `[boundary]` table makes the configurations rays along which a switching criterion
  (`CRITERIA`) is bracketed and bisected to a tolerance
  ([`find_boundary`][dynsim.sweeps.find_boundary], [`run_boundary`][dynsim.sweeps.run_boundary],
  [`bisect_rays`][dynsim.sweeps.bisect_rays], [`plot_boundary`][dynsim.sweeps.plot_boundary]); where the boundary
  is a fold of fixed points, [`fold_boundary`][dynsim.sweeps.fold_boundary] locates it from the fixed-point
  conditions ([`fold_point`][dynsim.sweeps.fold_point]); a boundary curve over one swept parameter by continuation
  (warm-started brackets, refinement where it bends: [`trace_boundary`][dynsim.sweeps.trace_boundary],
  [`continue_boundary`][dynsim.sweeps.continue_boundary]). `docs/guide/boundaries.md`.
"""

from dynsim import _aliases
from dynsim.sweeps._bisect import Flag, bisect_rays, iterations_needed, scan_points
from dynsim.sweeps._boundary import (describe_boundary, find_boundary, load_boundary_config, run_boundary,
                                    trace_boundary)
from dynsim.sweeps._continuation import CURVE_KEYS, continue_boundary
from dynsim.sweeps._config import EXAMPLES, LARGE_SWEEP, MAX_CONFIGS, ConfigError, SweepConfig, example_path, load_config
from dynsim.sweeps._metrics import (CRITERIA, DIFFERENTIABLE, auc_flat, auc_rank_k, collapse_auc, criterion, derivative_name,
                                   summarize)
from dynsim.sweeps._models import (ADAPTERS, VIEWS, Recipe, Trajectory, build_model, mode_data, parameter_paths, view_data,
                                  with_parameters)
from dynsim.sweeps._fold import Fold, active_coordinates, fold_boundary, fold_point
from dynsim.sweeps._plots import (metric_curve, phase_data, phase_diagram, pick_configs, plot_boundary, plot_curve,
                                  plot_run, spectra_over_time)
from dynsim.sweeps._runner import describe, distributed_part, recipe_for, run_sweep
from dynsim.sweeps._store import SweepResult, load, merge

__all__ = ["ADAPTERS", "CRITERIA", "CURVE_KEYS", "ConfigError", "DIFFERENTIABLE", "EXAMPLES", "Flag", "Fold", "LARGE_SWEEP",
           "MAX_CONFIGS", "Recipe", "SweepConfig", "SweepResult", "Trajectory", "VIEWS", "active_coordinates",
           "auc_flat", "auc_rank_k", "bisect_rays", "build_model", "collapse_auc", "continue_boundary", "criterion", "derivative_name",
           "describe", "describe_boundary", "distributed_part", "example_path", "find_boundary", "fold_boundary",
           "fold_point", "iterations_needed", "load", "load_boundary_config", "load_config", "merge", "metric_curve",
           "mode_data", "parameter_paths", "phase_data", "phase_diagram", "pick_configs", "plot_boundary",
           "plot_curve", "plot_run", "recipe_for", "run_boundary", "run_sweep", "scan_points", "spectra_over_time", "summarize", "trace_boundary",
           "view_data", "with_parameters"]


_aliases.register(__name__)
