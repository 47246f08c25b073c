"""Fits that raise leave the estimator as it was (scikit-learn's expectation).

An estimator's ``fit`` validates, sets fitted attributes and trains; if an error is raised on
the way (bad labels, a diverging loss), :func:`keeps_state_on_error` puts every attribute back:
a fitted estimator keeps predicting as before, an unfitted one stays unfitted. An interrupt
(``KeyboardInterrupt``) is not an error: the fit keeps what it has trained so far.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def keeps_state_on_error(fit: F) -> F:
    """Decorates a ``fit`` method: if it raises an ``Exception``, the instance's attributes are
    restored (the previous values are kept by reference, so fits must replace fitted
    attributes, not mutate them in place; an object trained in place, such as a Module student,
    is the fit's own business)."""

    @functools.wraps(fit)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        saved = dict(vars(self))
        try:
            return fit(self, *args, **kwargs)
        except Exception:
            vars(self).clear()
            vars(self).update(saved)
            raise

    return wrapper  # type: ignore[return-value]
