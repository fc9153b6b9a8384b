"""Closed-form results of the papers: invariants, fixed points, thresholds, exact solutions."""

from dynsim.analytic import tian2021

__all__ = ["tian2021"]
