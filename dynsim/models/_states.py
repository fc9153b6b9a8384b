"""The states of the two levels: per-mode amplitudes and network weight matrices."""

from __future__ import annotations

from typing import NamedTuple

import jax


class ModeState(NamedTuple):
    """Per-mode scalar weights: online `w`, predictor `w_p`, target `w_a`; each shape `(M,)`."""

    w: jax.Array
    w_p: jax.Array
    w_a: jax.Array


class NetState(NamedTuple):
    """Online `W` (n2, n1), predictor `W_p` (n2, n2), target `W_a` (n2, n1), and the running
    moment estimates `S11`, `S12` (n2, n2) that feed closed-form predictors."""

    W: jax.Array
    W_p: jax.Array
    W_a: jax.Array
    S11: jax.Array
    S12: jax.Array
