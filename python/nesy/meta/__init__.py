"""Meta-learning: learn an initialisation (and learning rates) that adapts to a new task from a
few examples, with Reptile, first-order MAML, second-order MAML and Meta-SGD.

Every task of a meta-batch runs in one batched pass (:mod:`nesy.meta.functional`); task
families and the sampler interface are in :mod:`nesy.meta.tasks`::

    from nesy.nn import Dense, ReLU, Sequential
    from nesy.meta import MetaLearner, SineTasks

    net = Sequential(Dense(1, 40, rng=0), ReLU(), Dense(40, 40, rng=1), ReLU(), Dense(40, 1, rng=2))
    learner = MetaLearner(net, algorithm="metasgd", inner_lr=0.01).fit(SineTasks(k_shot=5), 20000)
    res = learner.evaluate(SineTasks(k_shot=5, k_query=100), n_tasks=600, rng=0)
    adapted = learner.adapt(support_x, support_y)  # a copy of net adapted to one new task

The tables of the README are produced by :mod:`nesy.meta.report`.
"""

from nesy.meta.algorithms import ALGORITHMS, InnerOptimizer, MetaStep, inner_loop, meta_gradient
from nesy.meta.functional import BatchedMLP, ModuleLoop, make_backend
from nesy.meta.learner import MetaLearner
from nesy.meta.tasks import DigitsTasks, SineTasks, TaskBatch, check_task_batch

__all__ = [
    "MetaLearner",
    "SineTasks",
    "DigitsTasks",
    "TaskBatch",
    "check_task_batch",
    "ALGORITHMS",
    "MetaStep",
    "InnerOptimizer",
    "inner_loop",
    "meta_gradient",
    "BatchedMLP",
    "ModuleLoop",
    "make_backend",
]
