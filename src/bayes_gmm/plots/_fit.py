"""What the figures take from a fit, on top of :func:`bayes_gmm.inference._draws.fit_draws`: its title,
the membership of the points, and fewer posterior draws for densities."""

from __future__ import annotations

import xarray as xr

from bayes_gmm.inference._draws import FitDraws, fit_draws
from bayes_gmm.inference._membership import membership_probabilities

#: Posterior draws (evenly thinned) the membership probabilities of the plotted points average over.
MEMBERSHIP_MAX_DRAWS = 500


def fit_label(draws: FitDraws) -> str:
    """What the fit is, for titles: e.g. "EM fit (full covariances)", "Bayesian fit (NUTS, full covariances)"."""
    if draws.source == "em":
        return f"EM fit ({draws.fit.covariance_type} covariances)"
    attrs = getattr(draws.fit, "attrs", {}) or {}
    method = str(attrs.get("method", "posterior")).upper().replace("_", "-")
    cov = attrs.get("covariance_type")
    return f"Bayesian fit ({method}{f', {cov} covariances' if cov else ''})"


def membership_of(draws: FitDraws, X) -> xr.Dataset:
    """Membership probabilities of the points of `draws` (`X` as the plot function was given it)."""
    return membership_probabilities(draws.fit, X, max_draws=MEMBERSHIP_MAX_DRAWS)


def thinned(draws: FitDraws, X, max_draws: int | None, *, func: str) -> FitDraws:
    """`draws` with at most `max_draws` posterior draws, evenly thinned (an EM fit's one draw as it is)."""
    if max_draws is None or draws.n_draws <= max_draws:
        return draws
    return fit_draws(draws.fit, X, func=func, max_draws=max_draws)
