r"""Real data and augmentations: the joint second moments of two augmented views of a data set (exact by
enumeration of finite augmentation families, or sampled with standard errors), their eigenmodes, and network data
that trains on the actual augmented samples (`docs/theory/views.md#augmentations`, the data guide).

The bundled real data set, scikit-learn's digits, needs the extra `dynsim[data]`; every function also takes a user
array.
"""

from dynsim.data._augment import Augmentation
from dynsim.data._datasets import load_digits
from dynsim.data._moments import ViewMoments, exact_moments, sampled_moments
from dynsim.data._predict import mode_predictions
from dynsim.data._views import AugmentedViews

__all__ = ["Augmentation", "AugmentedViews", "ViewMoments", "exact_moments", "load_digits", "mode_predictions",
           "sampled_moments"]
