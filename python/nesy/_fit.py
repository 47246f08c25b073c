"""Fits that raise leave the estimator as it was (scikit-learn's expectation).

An estimator's ``fit`` validates, sets fitted attributes and trains; if anything raises on the
way (bad labels, a diverging loss, an interrupted run), :func:`keeps_state_on_error` puts every
attribute back: a fitted estimator keeps predicting as before, an unfitted one stays unfitted.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def keeps_state_on_error(fit: F) -> F:
    """Decorates a ``fit`` method: if it raises, the instance's attributes are restored (the
    previous values are kept by reference, so fits must replace fitted attributes, not mutate
    them in place)."""

    @functools.wraps(fit)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        saved = dict(vars(self))
        try:
            return fit(self, *args, **kwargs)
        except BaseException:
            vars(self).clear()
            vars(self).update(saved)
            raise

    return wrapper  # type: ignore[return-value]
