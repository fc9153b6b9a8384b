r"""Solver defaults, declared once: every entry point ([`solve`][dynsim.solvers.solve],
[`solve_batch`][dynsim.solvers.solve_batch], [`solver_config`][dynsim.solvers.solver_config], sweeps, the CLI) reads them here.

| name | value | why |
|---|---|---|
| `method` | `"tsit5"` | one solve: diffrax's Tsit5 with a PID controller, robust, dense output |
| `batch_method` | `"rk45"` | many small solves under `vmap` (sweeps): the lean Dormand–Prince loop, about 3x faster than diffrax there (`benchmarks/bench_modes.py`) |
| `max_steps` | `100_000` | step budget of the adaptive methods (a stuck solve ends as `MAX_STEPS`) |
| `rtol`, `atol` | `1e-8, 1e-10` `1e-5, 1e-7` | float64 (tight enough for the 1e-6 oracle checks with margin) float32 (near its round-off; tighter tolerances cannot be met) |
| `adjoint` | `"reverse"` | how the diffrax methods are differentiated: `"reverse"` (checkpointed reverse mode, `jax.grad`; diffrax's `RecursiveCheckpointAdjoint`) or `"forward"` (`jax.jvp` / `jax.jacfwd`, diffrax's `ForwardMode`: cheaper for few parameters and many outcomes). `rk45` and `rk4` need no choice: `rk45` has forward mode, `rk4` both. A solve with no traced input runs the forward loop whatever it says (the same values) |
| `on_failure` | `"raise"` | a failed solve raises [`SolveError`][dynsim.solvers.SolveError] |
| `sweep_on_failure` | `"warn"` | a sweep maps regions where some solves fail: it finishes, warns and flags those configurations in their `status` summary |

`ON_FAILURE` lists what every entry point that can fail accepts: `"raise"`, `"warn"` (a
`RuntimeWarning` with the failure summary; the result is returned) or `"flag"` (silently returned:
inspect `Solution.status`).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp

ON_FAILURE = ("raise", "warn", "flag")
ADJOINTS = ("reverse", "forward")


@dataclass(frozen=True)
class SolverDefaults:
    """The table above (read-only)."""

    method: str = "tsit5"
    batch_method: str = "rk45"
    max_steps: int = 100_000
    rtol64: float = 1e-8
    atol64: float = 1e-10
    rtol32: float = 1e-5
    atol32: float = 1e-7
    adjoint: str = "reverse"
    on_failure: str = "raise"
    sweep_on_failure: str = "warn"

    def tolerances(self, dtype, rtol=None, atol=None) -> tuple[float, float]:
        """`(rtol, atol)` for a state of `dtype`, the given values taking precedence."""
        f32 = jnp.finfo(dtype).bits <= 32
        return (self.rtol32 if f32 else self.rtol64) if rtol is None else rtol, \
            (self.atol32 if f32 else self.atol64) if atol is None else atol


DEFAULTS = SolverDefaults()
