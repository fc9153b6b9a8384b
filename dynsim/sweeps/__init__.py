"""Parameter sweeps: TOML config → chunked, vmapped, sharded runs → run folders → summaries and plots.

==================  ===============================================================
:mod:`.config`      TOML schema, overrides, validation, axis expansion
:mod:`.models`      adapters: tian_modes, ssl_modes, network
:mod:`.metrics`     per-configuration summaries (collapse, Li et al. AUC, ranks)
:mod:`.runner`      chunking, vmap, sharding, parts, resume
:mod:`.store`       run folders, atomic chunk files, load, merge
:mod:`.plots`       phase diagrams and spectra
==================  ===============================================================
"""

from dynsim.sweeps.config import ConfigError, SweepConfig, load_config
from dynsim.sweeps.store import SweepResult, load, merge

__all__ = ["ConfigError", "SweepConfig", "SweepResult", "load", "load_config", "merge", "run_sweep"]


def run_sweep(cfg, out, **kwargs):
    """Run or resume ``cfg`` (a :class:`SweepConfig` or a TOML path) into ``out``; see :func:`.runner.run_sweep`."""
    from dynsim.sweeps.runner import run_sweep as _run

    return _run(cfg if isinstance(cfg, SweepConfig) else load_config(cfg), out, **kwargs)
