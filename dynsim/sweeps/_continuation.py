r"""A boundary curve in a parameter plane by continuation: warm-started brackets, and refinement where it bends.

The curve is $x_b(s)$: $s$ the one swept parameter of a boundary configuration (its `[grid]` axis), $x$ the searched
one. [`continue_boundary`][dynsim.sweeps.continue_boundary] takes a vectorised `evaluate(s, x) -> (c, ok)` and

1. **anchors**: searches the given values of $s$ as independent rays
   ([`bisect_rays`][dynsim.sweeps.bisect_rays]: scan points over the whole bracket, then bisection);
2. **refines**, in rounds, every interval $[s_a, s_b]$ of neighbouring rays that both found the boundary and where
   the curve *bends*: a point whose boundary lies farther than `bend` from the chord through its two neighbours
   marks both its intervals (in $\log x$ with `log`). Each marked interval gets a ray at its midpoint (geometric when
   the axis is geometric);
3. **warm-starts** each new ray: its bracket is centred on the chord's value $\tfrac12(x_a + x_b)$ with half-width
   `margin` times the expected error of that value (a quarter of the larger deviation from the chord measured at
   $s_a$ and $s_b$: a smooth curve's chord error falls with the square of the spacing; $\tfrac12|x_b - x_a|$ where
   no deviation was measured), at least the neighbours' final bracket widths; two evaluations at its ends check that
   the criterion differs there. Where it does not, the bracket is widened fourfold around the same centre (clipped
   to the configured bracket; after `expansions` widenings the whole bracket is tried), so a ray costs two to a few evaluations plus the
   bisections of a narrow bracket, instead of the `scan` points over the whole bracket. A ray whose widened bracket
   reaches the whole bracket without a switch is flagged `NO_SWITCH`. An interval where only one end found the
   boundary (the curve leaves the bracket, or a solve failed) gets a ray searched from scratch, which locates where
   the curve ends.

Rounds stop when no interval is marked, after `max_rounds`, or at `max_rays` rays. Every round's new rays are
evaluated together (one batched call per evaluation), so a round costs about as many calls as one ray.

A warm bracket that contains the switch shows one switch between its ends; it cannot show whether there are more
(an even number of extra switches inside goes unseen), which the anchors' scan would have flagged `SEVERAL`: use
continuation where the anchors are `OK` (the criterion switches once along each ray).
"""

from __future__ import annotations

import numpy as np

from dynsim.sweeps._bisect import Flag, bisect_rays, midpoint, refine_brackets

#: the defaults of the continuation's options (`continue_boundary`, `trace_boundary`, `dynsim boundary trace`)
MARGIN, EXPANSIONS, MAX_ROUNDS, MAX_RAYS = 2.0, 6, 8, 256
#: the arrays of a curve (each `(n_rays,)`, ordered by `s`), as returned by `continue_boundary`
CURVE_KEYS = ("s", "boundary", "lower", "upper", "below", "flag", "n_evaluations", "warm", "round")


def _deviations(s, u, ok):
    """Distance of each point's boundary from the chord through its two neighbours (`u`: the boundary in the
    bisection's coordinate); NaN at the ends and where a point or a neighbour has no boundary."""
    dev = np.full(len(s), np.nan)
    for i in range(1, len(s) - 1):
        if ok[i - 1] and ok[i] and ok[i + 1]:
            w = (s[i] - s[i - 1]) / (s[i + 1] - s[i - 1])
            dev[i] = abs(u[i] - ((1 - w) * u[i - 1] + w * u[i + 1]))
    return dev


def continue_boundary(evaluate, s, lo: float, hi: float, *, scan: int = 9, log: bool = False, rtol: float = 1e-8,
                      atol: float = 0.0, max_iter: int = 64, bend: float | None = None, margin: float = MARGIN,
                      expansions: int = EXPANSIONS, max_rounds: int = MAX_ROUNDS, max_rays: int = MAX_RAYS,
                      log_axis: bool = False, on_call=None) -> dict:
    """Trace the boundary over `s` (module docstring).

    Args:
        evaluate: `evaluate(s, x) -> (c, ok)`: `(n,)` values of the swept and the searched parameter, one pair per
            ray; the criterion `c` and whether the solve succeeded `ok`, both boolean `(n,)`.
        s: the anchors' values of the swept parameter (at least 2).
        lo: low end of the searched parameter's bracket.
        hi: high end of the bracket.
        scan: the anchors' scan points (as [`bisect_rays`][dynsim.sweeps.bisect_rays]).
        log: geometric brackets in the searched parameter.
        rtol: relative tolerance of every ray's final bracket.
        atol: absolute tolerance of every ray's final bracket.
        max_iter: most bisections per ray.
        bend: largest allowed distance of a point from its neighbours' chord (in $\\log x$ with `log`); default
            1e-3 of the bracket's width (of $\\log(hi/lo)$ with `log`).
        margin: half-width of a warm bracket in units of the expected error of its centre (step 3).
        expansions: fourfold widenings of a warm bracket before the whole bracket is tried.
        max_rounds: most refinement rounds.
        max_rays: most rays in all, anchors included.
        log_axis: geometric midpoints in `s`.
        on_call: called after every evaluation.

    Returns:
        A dict of `(n_rays,)` arrays ordered by `s` (`CURVE_KEYS`): `s`, and as in `bisect_rays` `boundary`,
        `lower`, `upper`, `below`, `flag`, `n_evaluations`; `warm` (bracketed from its neighbours) and `round`
        (0 for the anchors).
    """
    s0 = np.asarray(s, float)
    if s0.ndim != 1 or s0.size < 2 or np.unique(s0).size != s0.size:
        raise ValueError(f"continuation needs at least 2 distinct anchor values of the swept parameter, got {s0}")
    if log_axis and np.any(s0 <= 0):
        raise ValueError("geometric midpoints in s need s > 0")
    if margin <= 0 or expansions < 0 or max_rounds < 0 or max_rays < s0.size:
        raise ValueError(f"need margin > 0, expansions >= 0, max_rounds >= 0 and max_rays >= the {s0.size} anchors, "
                         f"got margin={margin}, expansions={expansions}, max_rounds={max_rounds}, max_rays={max_rays}")
    to_u = np.log if log else (lambda x: np.asarray(x, float))
    from_u = np.exp if log else (lambda u: np.asarray(u, float))
    u_lo, u_hi = float(to_u(lo)), float(to_u(hi))
    bend = 1e-3 * (u_hi - u_lo) if bend is None else float(bend)
    if not bend > 0:
        raise ValueError(f"bend must be > 0, got {bend}")
    def whole_bracket(s_rays):
        """Rays searched from scratch: scan points over the whole bracket, then bisection."""
        return bisect_rays(lambda x: evaluate(s_rays, x), s_rays.size, lo, hi, scan=scan, log=log, rtol=rtol,
                           atol=atol, max_iter=max_iter, on_call=on_call)

    s0 = np.sort(s0)
    curve = {k: np.asarray(v) for k, v in whole_bracket(s0).items()} | {"s": s0, "warm": np.zeros(s0.size, bool),
                                                          "round": np.zeros(s0.size, np.int32)}
    for rnd in range(1, max_rounds + 1):
        s_all, flag = curve["s"], curve["flag"]
        ok = flag == Flag.OK
        u = to_u(np.where(ok, curve["boundary"], 1.0 if log else 0.0))
        dev = _deviations(s_all, u, ok)
        big = np.nan_to_num(dev) > bend
        bent = big[:-1] | big[1:]  # an interval next to a point that bends
        edge = ok[:-1] != ok[1:]  # the curve ends (or a solve failed) between these two rays
        todo = np.flatnonzero(bent | edge)[: max(0, max_rays - s_all.size)]
        if todo.size == 0:
            break
        a, b = todo, todo + 1
        s_new = np.sqrt(s_all[a] * s_all[b]) if log_axis else 0.5 * (s_all[a] + s_all[b])
        warm = ok[a] & ok[b]
        new = {k: np.zeros(todo.size, curve[k].dtype) for k in curve}
        new["s"], new["warm"], new["round"] = s_new, warm, np.full(todo.size, rnd, np.int32)
        if warm.any():
            # the chord's error at the midpoint: a quarter of the larger deviation at the interval's ends (the chord
            # error of a smooth curve falls with the square of the spacing), else half the neighbours' difference
            guess = 0.25 * np.fmax(dev[a], dev[b])
            guess = np.where(np.isnan(guess), 0.5 * np.abs(u[b] - u[a]), guess)
            part = _warm_rays(evaluate, s_new[warm], 0.5 * (u[a] + u[b])[warm], guess[warm], curve, a[warm], b[warm],
                              u_lo, u_hi, to_u, from_u, log, rtol, atol, max_iter, margin, expansions, on_call)
            for k, v in part.items():
                new[k][warm] = v
        if (~warm).any():
            for k, v in whole_bracket(s_new[~warm]).items():
                new[k][~warm] = v
        merged = {k: np.concatenate([curve[k], new[k]]) for k in curve}
        order = np.argsort(merged["s"], kind="stable")
        curve = {k: v[order] for k, v in merged.items()}
    return {k: curve[k] for k in CURVE_KEYS}


def _warm_rays(evaluate, s, centre, guess, curve, a, b, u_lo, u_hi, to_u, from_u, log, rtol, atol, max_iter, margin,
               expansions, on_call) -> dict:
    """Brackets from the neighbours' boundaries (module docstring, step 3), checked at both ends, widened where the
    criterion is the same there; then bisection."""
    n = s.size
    width_a = to_u(curve["upper"][a]) - to_u(curve["lower"][a])
    width_b = to_u(curve["upper"][b]) - to_u(curve["lower"][b])
    half = margin * np.maximum.reduce([guess, width_a, width_b, np.full(n, 1e-300)])
    evaluations = np.zeros(n, np.int32)
    ok = np.ones(n, bool)
    found = np.zeros(n, bool)
    exhausted = np.zeros(n, bool)
    lower, upper, below = np.empty(n), np.empty(n), np.zeros(n, bool)
    for attempt in range(expansions + 1):
        todo = ~found & ~exhausted
        if not todo.any():
            break
        if attempt == expansions:  # the last try is the whole bracket, so no switch inside it goes unchecked
            half = np.where(todo, np.inf, half)
        x_lo = from_u(np.clip(centre[todo] - half[todo], u_lo, u_hi))
        x_hi = from_u(np.clip(centre[todo] + half[todo], u_lo, u_hi))
        c_lo, g_lo = (np.asarray(v, bool) for v in evaluate(s[todo], x_lo))
        c_hi, g_hi = (np.asarray(v, bool) for v in evaluate(s[todo], x_hi))
        if on_call is not None:
            on_call()
            on_call()
        evaluations[todo] += 2
        ok[todo] &= g_lo & g_hi
        lower[todo], upper[todo], below[todo] = x_lo, x_hi, c_lo
        found[todo] = c_lo != c_hi
        whole = (to_u(x_lo) <= u_lo) & (to_u(x_hi) >= u_hi)
        exhausted[todo] = ~found[todo] & whole
        half = np.where(todo, 4 * half, half)

    lo_f, hi_f, good, steps, active = refine_brackets(
        lambda x: evaluate(s[found], x), lower[found], upper[found], below[found], np.ones(int(found.sum()), bool),
        log=log, rtol=rtol, atol=atol, max_iter=max_iter, on_call=on_call)
    lower[found], upper[found] = lo_f, hi_f
    ok[found] &= good
    evaluations[found] += steps
    flag = np.full(n, Flag.NO_SWITCH, np.int32)
    flag[found] = np.where(active, Flag.NOT_CONVERGED, Flag.OK)
    flag = np.where(ok, flag, Flag.FAILED).astype(np.int32)
    boundary = np.where(found, midpoint(lower, upper, log), np.nan)
    return {"boundary": boundary, "lower": lower, "upper": upper, "below": below, "flag": flag,
            "n_evaluations": evaluations}
