"""What the two levels share: the components, the weight decays and the checks across components."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx

from dynsim import _checks
from dynsim.components import (AbstractClosedForm, AbstractExpectation, AbstractLoss, AbstractPredictor,
                               AbstractTarget, Auto, EMA, Euclidean, Trainable)


class AbstractModel(eqx.Module):
    r"""A model of linear non-contrastive SSL assembled from components ([`dynsim.components`][dynsim.components]).

    Attributes:
        loss: the loss component (default [`Euclidean`][dynsim.components.Euclidean]).
        predictor: the predictor component (default [`Trainable`][dynsim.components.Trainable]).
        target: the target branch (default [`EMA`][dynsim.components.EMA]).
        expectation: how expectations over the views are taken (default [`Auto`][dynsim.components.Auto]).
        weight_decay: $\eta \ge 0$ on the online weights (1/time).
        predictor_weight_decay: $\eta_p \ge 0$ on a trainable predictor; `None` (default) means
            $\eta_p = \eta$, as in Tian et al. (2021).
    """

    loss: AbstractLoss = Euclidean()
    predictor: AbstractPredictor = Trainable()
    target: AbstractTarget = EMA()
    expectation: AbstractExpectation = Auto()
    weight_decay: float = 0.0
    predictor_weight_decay: float | None = None

    def __check_init__(self):
        for name, kind in (("loss", AbstractLoss), ("predictor", AbstractPredictor), ("target", AbstractTarget),
                           ("expectation", AbstractExpectation)):
            if not isinstance(getattr(self, name), kind):
                raise TypeError(f"{name} must be an instance of {kind.__name__} (see dynsim.components), got "
                                f"{type(getattr(self, name)).__name__}")
        if self.loss.iso and not self.predictor.closed_form:
            raise ValueError("IsoLoss needs a closed-form predictor (Halvagal et al. 2023)")
        if self.loss.iso and not self.target.stop_gradient:
            raise ValueError("IsoLoss needs the stop-gradient")

    @property
    def eta_p(self):
        """The predictor's weight decay $\\eta_p$ (`weight_decay` unless set)."""
        return self.weight_decay if self.predictor_weight_decay is None else self.predictor_weight_decay

    @property
    def closed_form(self) -> bool:
        return isinstance(self.predictor, AbstractClosedForm)

    #: whether this model works at eigenmode level (where some losses have exact expectation forms)
    modes_level: ClassVar[bool] = False

    @property
    def resolved_expectation(self) -> AbstractExpectation:
        return self.expectation.resolve(self.loss, modes=self.modes_level)

    @property
    def rhs_work_factor(self) -> int:
        """Elements one right-hand side touches per state element (sizes batch chunks on CPU)."""
        return self.resolved_expectation.work_factor(self.loss)

    def after_step(self, y, args):
        """The state after one discrete step `y = y_k + lr * rhs(y_k)`: quantities that are functions of the
        others (a closed-form predictor's recorded value) are recomputed, not stepped. Default: `y`."""
        return y

    def check(self):
        """Validate every concrete parameter value (errors name the component and field)."""
        _checks.check_positive("weight_decay", self.weight_decay, strict=False)
        if self.predictor_weight_decay is not None:
            _checks.check_positive("predictor_weight_decay", self.predictor_weight_decay, strict=False)
        for part in (self.loss, self.predictor, self.target, self.expectation):
            part.check()
        return self
