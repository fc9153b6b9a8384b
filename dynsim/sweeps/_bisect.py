r"""Bracketing and bisection of a switching criterion along many rays at once.

A *ray* is one configuration of the other parameters; along it the searched parameter $x$ runs over the bracket
$[x_\mathrm{lo}, x_\mathrm{hi}]$, and a boolean criterion $c(x)$ (e.g. "every mode has collapsed by $t_1$") switches
where the boundary is. [`bisect_rays`][dynsim.sweeps.bisect_rays] takes a vectorised `evaluate(x) -> (c, ok)` over
all rays (one batched solve per call: the rays share one compiled program and one call per step) and

1. **brackets**: evaluates every ray at `scan` points of the bracket (linear, or geometric with `log`) and keeps the
   first interval, from the low end, where $c$ changes; a ray whose $c$ never changes is flagged `NO_SWITCH`, one
   where it changes more than once `SEVERAL` (a non-monotone criterion or a fractal basin: the first switch is refined
   and the flag says the answer is one boundary among several);
2. **bisects** every bracketed ray until its bracket $[a, b]$ satisfies $b - a \le \mathrm{atol} + \mathrm{rtol}
   \max(|a|, |b|)$ (midpoints; geometric midpoints with `log`), `max_iter` steps at most (`NOT_CONVERGED`).

Bisection needs nothing from $c$ but its value, so it is as robust as the criterion: every step halves the bracket and
the answer is a bracket, never an extrapolation. A failed solve at an evaluated point flags the ray `FAILED`.
"""

from __future__ import annotations

import enum
import math

import numpy as np


class Flag(enum.IntEnum):
    """Outcome of one ray's search."""

    OK = 0  #: one switch, bracketed to the tolerance
    NO_SWITCH = 1  #: the criterion has one value at every scan point (boundary NaN; `below` says which)
    SEVERAL = 2  #: more than one switch among the scan points; the first from the low end was refined
    FAILED = 3  #: a solve failed at a point the search evaluated
    NOT_CONVERGED = 4  #: `max_iter` bisections left the bracket wider than the tolerance


def scan_points(lo: float, hi: float, n: int, log: bool = False) -> np.ndarray:
    """The `n` scan points of the bracket, both ends included (`numpy.geomspace` with `log`)."""
    return np.geomspace(lo, hi, n) if log else np.linspace(lo, hi, n)


def iterations_needed(lo: float, hi: float, scan: int, rtol: float, atol: float, log: bool = False) -> int:
    """Bisections that bring one scan interval of the bracket within the tolerance (an upper bound for a boundary
    beyond the smallest non-zero scan point: the width allowed there)."""
    pts = scan_points(lo, hi, scan, log)
    width = float(np.max(np.diff(pts)))
    nonzero = np.abs(pts[pts != 0])
    allowed = atol + rtol * (float(nonzero.min()) if nonzero.size else 0.0)
    return max(0, math.ceil(math.log2(width / allowed))) if allowed > 0 else 64


def bisect_rays(evaluate, n: int, lo: float, hi: float, *, scan: int = 9, log: bool = False, rtol: float = 1e-8,
                atol: float = 0.0, max_iter: int = 64, on_call=None) -> dict:
    """Search `n` rays at once (see the module docstring).

    Args:
        evaluate: `evaluate(x) -> (c, ok)`: `x` the `(n,)` values of the searched parameter, one per ray; `c` the
            criterion and `ok` whether the solve succeeded, both boolean `(n,)`.
        n: number of rays.
        lo: low end of the bracket.
        hi: high end of the bracket.
        scan: points that bracket the switch (at least 2).
        log: geometric scan points and midpoints (`lo > 0`).
        rtol: relative tolerance of the final bracket.
        atol: absolute tolerance of the final bracket.
        max_iter: most bisection steps.
        on_call: called after every evaluation (e.g. a progress bar's update).

    Returns:
        A dict of `(n,)` arrays: `boundary` (the final bracket's midpoint; NaN with `NO_SWITCH`), `lower`, `upper`
        (the final bracket), `below` (the criterion at `lower`), `flag` ([`Flag`][dynsim.sweeps.Flag]) and
        `n_evaluations`.
    """
    pts = scan_points(lo, hi, scan, log)
    crit = np.zeros((n, scan), bool)
    ok = np.ones(n, bool)
    for j, x in enumerate(pts):
        c, good = evaluate(np.full(n, x))
        crit[:, j], ok = np.asarray(c, bool), ok & np.asarray(good, bool)
        if on_call is not None:
            on_call()
    switches = crit[:, 1:] != crit[:, :-1]
    n_switch = switches.sum(axis=1)
    first = np.argmax(switches, axis=1)
    rows = np.arange(n)
    lower, upper = pts[first].astype(float), pts[first + 1].astype(float)
    below = crit[rows, first]
    flag = np.where(n_switch == 0, Flag.NO_SWITCH, np.where(n_switch > 1, Flag.SEVERAL, Flag.OK)).astype(np.int32)
    lower = np.where(n_switch == 0, lo, lower)
    upper = np.where(n_switch == 0, hi, upper)
    below = np.where(n_switch == 0, crit[:, 0], below)

    active = n_switch > 0
    lower, upper, good, evaluations, active = refine_brackets(evaluate, lower, upper, below, active, log=log,
                                                              rtol=rtol, atol=atol, max_iter=max_iter, on_call=on_call)
    ok &= good
    evaluations += scan
    flag = np.where(active, Flag.NOT_CONVERGED, flag)
    flag = np.where(~ok, Flag.FAILED, flag).astype(np.int32)
    boundary = np.where(n_switch == 0, np.nan, midpoint(lower, upper, log))
    return {"boundary": boundary, "lower": lower, "upper": upper, "below": below, "flag": flag,
            "n_evaluations": evaluations}


def midpoint(lower, upper, log: bool = False):
    """The bisection point of brackets: arithmetic, or geometric with `log`."""
    return np.sqrt(lower * upper) if log else 0.5 * (lower + upper)


def refine_brackets(evaluate, lower, upper, below, active, *, log: bool = False, rtol: float = 1e-8,
                    atol: float = 0.0, max_iter: int = 64, on_call=None):
    """Bisect the brackets `[lower, upper]` of the `active` rays, the criterion being `below` at `lower` and the
    other value at `upper`, until each satisfies the tolerance (module docstring) or `max_iter` steps are spent.
    Returns `(lower, upper, ok, evaluations, active)`: `ok` false where a solve failed, `evaluations` per ray,
    `active` true where the bracket is still wider than the tolerance."""
    lower, upper = np.array(lower, float), np.array(upper, float)
    below = np.asarray(below, bool)
    ok = np.ones(lower.shape, bool)
    evaluations = np.zeros(lower.shape, np.int32)

    def converged():
        return upper - lower <= atol + rtol * np.maximum(np.abs(lower), np.abs(upper))

    active = np.asarray(active, bool) & ~converged()
    for _ in range(max_iter):
        if not active.any():
            break
        mid = midpoint(lower, upper, log)
        c, good = evaluate(mid)
        c, good = np.asarray(c, bool), np.asarray(good, bool)
        ok = np.where(active, ok & good, ok)
        same = c == below
        lower = np.where(active & same, mid, lower)
        upper = np.where(active & ~same, mid, upper)
        evaluations += active
        active = active & ~converged()
        if on_call is not None:
            on_call()
    return lower, upper, ok, evaluations, active
