"""Warnings and errors that bayes-gmm raises, so that users can filter or catch them by class."""


class ConvergenceWarning(UserWarning):
    """An iterative fit stopped at its iteration limit before meeting its convergence criterion."""


class IllConditionedCovarianceError(ValueError):
    """A component's covariance is not positive definite (a collapsed or degenerate component)."""


COLLAPSE_HINT = (
    "Increase reg_covar (e.g. reg_covar=1e-4), use fewer components, or a more constrained covariance_type "
    "('tied', 'diag' or 'spherical')."
)
