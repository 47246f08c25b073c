"""Knowledge distillation: train a small student on a teacher's outputs.

:class:`Distiller` takes any teacher :func:`as_teacher` understands (nesy networks, estimators
with ``predict_proba``, PyTorch modules, callables) and a student (a nesy network or estimator,
or an interpretable model such as a rule learner from :mod:`nesy.rules`), with Hinton's loss
(:func:`distillation_loss`) and optional synthetic rows near the data (:func:`augment`)
labelled by the teacher.
"""

from nesy.distill.augment import augment
from nesy.distill.distiller import Distiller
from nesy.distill.losses import DistillationLoss, RegressionDistillationLoss, distillation_loss
from nesy.distill.teachers import Teacher, as_teacher

__all__ = [
    "Distiller", "DistillationLoss", "RegressionDistillationLoss", "distillation_loss",
    "Teacher", "as_teacher", "augment",
]
