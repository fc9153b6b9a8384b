"""Closed-form results of the papers: invariants, fixed points, thresholds, exact solutions."""

from dynsim.analytic import bardes2022, halvagal2023, haochen2021, reference, simon2023, tian2021

__all__ = ["bardes2022", "halvagal2023", "haochen2021", "reference", "simon2023", "tian2021"]
