"""A fit, EM or Bayesian, as what membership, densities, reports and plots need: the points to evaluate,
and draws of the mixture's weights, means and full covariance matrices (one "draw" for EM)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from bayes_gmm._validation import (
    check_positive_int,
    data_in_fit_order,
    default_feature_names,
    feature_names_of,
)
from bayes_gmm.em_baseline import EMResult
from bayes_gmm.inference._arviz import has_group
from bayes_gmm.models import OBSERVED

#: The posterior variables a Bayesian fit must hold for membership, densities and plots, and their dims.
POSTERIOR_DIMS = {
    "weights": ("chain", "draw", "component"),
    "means": ("chain", "draw", "component", "feature"),
    "covariances": ("chain", "draw", "component", "feature", "feature_cov"),
}
POSTERIOR_VARIABLES = tuple(POSTERIOR_DIMS)


@dataclass(frozen=True, eq=False)
class FitDraws:
    """Draws of a mixture's parameters and the points to evaluate them at.

    Attributes
    ----------
    fit : xarray.DataTree or EMResult
        The fit they came from.
    source : {"posterior", "em"}
    X : ndarray of shape (n_samples, n_features)
        The points: those given, or a Bayesian fit's training data.
    obs_ids : ndarray of shape (n_samples,)
        The fit's ``obs_id`` coordinate for its own training data, the index of a DataFrame given as the
        points, else 0, 1, ...
    feature_names : tuple of str
    weights : ndarray of shape (n_draws, K)
    means : ndarray of shape (n_draws, K, D)
    covariances : ndarray of shape (n_draws, K, D, D)
        Full matrices, whatever the covariance type; EM has one draw, its estimate.
    components : ndarray of shape (K,)
        The ``component`` coordinate.
    """

    fit: object
    source: str
    X: np.ndarray
    obs_ids: np.ndarray
    feature_names: tuple[str, ...]
    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    components: np.ndarray

    @property
    def n_draws(self) -> int:
        return self.weights.shape[0]

    @property
    def n_components(self) -> int:
        return self.means.shape[1]

    @property
    def n_features(self) -> int:
        return self.means.shape[2]

    def point_estimate(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Weights, means and covariances averaged over the draws (EM: its estimate)."""
        return self.weights.mean(axis=0), self.means.mean(axis=0), self.covariances.mean(axis=0)


def fit_draws(fit, X=None, *, func: str, max_draws: int | None = None, em_allowed: bool = True) -> FitDraws:
    """`fit` as a :class:`FitDraws`; posterior draws pooled over chains (chain-major) and evenly thinned to
    at most `max_draws`.

    `X` defaults to a Bayesian fit's stored training data (an EMResult stores none: then `X` is required).
    A DataFrame is matched to the fit's features by column name (:func:`data_in_fit_order`), and its index
    becomes the ``obs_ids``. `func` names the public function in error messages.
    """
    check_fit(fit, func=func, em_allowed=em_allowed)
    if isinstance(fit, EMResult):
        if X is None:
            raise ValueError(
                "X is required for an EM fit: an EMResult does not store its training data. "
                f"Pass the data, e.g. {func}(em, X)."
            )
        points = data_in_fit_order(X, fit.feature_names, fit.n_features)
        return FitDraws(
            fit=fit,
            source="em",
            X=points,
            obs_ids=_row_labels(X, points.shape[0]),
            feature_names=fit.feature_names or feature_names_of(X) or default_feature_names(fit.n_features),
            weights=np.asarray(fit.weights, dtype=float)[None],
            means=np.asarray(fit.means, dtype=float)[None],
            covariances=fit.full_covariances()[None],
            components=np.arange(fit.n_components),
        )
    posterior = fit.posterior
    weights = pooled_draws(posterior["weights"], ("component",))
    means = pooled_draws(posterior["means"], ("component", "feature"))
    covariances = pooled_draws(posterior["covariances"], ("component", "feature", "feature_cov"))
    if max_draws is not None:
        max_draws = check_positive_int(max_draws, "max_draws")
        if max_draws < weights.shape[0]:
            keep = np.linspace(0, weights.shape[0] - 1, max_draws).round().astype(int)
            weights, means, covariances = weights[keep], means[keep], covariances[keep]
    points = _posterior_points(fit, X, func=func)
    return FitDraws(
        fit=fit,
        source="posterior",
        X=points,
        obs_ids=fit.observed_data["obs_id"].to_numpy() if X is None else _row_labels(X, points.shape[0]),
        feature_names=tuple(str(name) for name in posterior["feature"].to_numpy()),
        weights=weights,
        means=means,
        covariances=covariances,
        components=posterior["component"].to_numpy(),
    )


def check_fit(
    fit, *, func: str, em_allowed: bool = True, name: str = "fit", example: str | None = None
) -> None:
    """Raise a TypeError or ValueError unless `fit` is a fit_gmm result (or, if allowed, an EMResult).

    A fit_gmm result is a DataTree whose posterior holds the :data:`POSTERIOR_DIMS` variables with those
    dims; `name` is the parameter named in the messages, `example` a call that shows the fix (default
    ``func(fit_gmm(X, 2))``).
    """
    if em_allowed and isinstance(fit, EMResult):
        return
    expected = (
        "a Bayesian fit from fit_gmm (an xarray.DataTree with a posterior group holding weights, means and "
        "covariances)" + (" or an EMResult from fit_em" if em_allowed else "")
    )
    if not isinstance(fit, xr.DataTree):
        raise TypeError(
            f"{name} must be {expected}; got {'None' if fit is None else f'a {type(fit).__name__}: {fit!r:.60}'}. "
            f"Pass what fit_gmm returned "
            f"(or arviz.from_netcdf loaded), e.g. {example or f'{func}(fit_gmm(X, 2))'}."
        )
    if not has_group(fit, "posterior"):
        problem = f"a DataTree without a posterior group (groups: {sorted(fit.children)})"
    else:
        posterior = fit["posterior"]
        missing = [variable for variable in POSTERIOR_VARIABLES if variable not in posterior]
        wrong = {
            variable: tuple(posterior[variable].dims)
            for variable, dims in POSTERIOR_DIMS.items()
            if variable not in missing and set(posterior[variable].dims) != set(dims)
        }
        if not missing and not wrong:
            return
        problem = (
            f"a DataTree whose posterior lacks {missing}"
            if missing
            else "a DataTree whose posterior variables have other dims than fit_gmm gives them ("
            + "; ".join(f"{v} has {list(d)}, not {list(POSTERIOR_DIMS[v])}" for v, d in wrong.items())
            + ")"
        )
    raise ValueError(
        f"{name} must be {expected}; got {problem}. Pass what fit_gmm returned, or a file it wrote "
        f"(arviz.from_netcdf(path))."
    )


def _posterior_points(idata, X, *, func: str) -> np.ndarray:
    """The points to evaluate a Bayesian fit at: `X`, or the stored training data when `X` is None.

    A DataFrame is matched to the fit's features by column name (:func:`data_in_fit_order`: a different
    column order is harmless); arrays, and DataFrames for a fit made from an array (features ``x0, x1,
    ...``), by position.
    """
    feature_names = tuple(str(f) for f in idata.posterior["feature"].to_numpy())
    if X is None:
        if not has_group(idata, "observed_data") or OBSERVED not in idata.observed_data:
            raise ValueError(f"the fit has no observed_data; pass the points as X, e.g. {func}(idata, X).")
        return np.asarray(idata.observed_data[OBSERVED].to_numpy(), dtype=float)
    named = feature_names != default_feature_names(len(feature_names))
    return data_in_fit_order(X, feature_names if named else None, len(feature_names))


def _row_labels(X, n_rows: int) -> np.ndarray:
    """The ``obs_id`` of the points `X`: a pandas DataFrame's index (its values), else 0, 1, ..."""
    index = getattr(X, "index", None)
    if isinstance(index, pd.Index) and getattr(X, "columns", None) is not None:
        return index.to_numpy()
    return np.arange(n_rows)


def pooled_draws(variable: xr.DataArray, dims: tuple[str, ...]) -> np.ndarray:
    """A posterior variable as an array (chain x draw pooled, chain-major) followed by `dims`."""
    return variable.stack(sample=("chain", "draw")).transpose("sample", *dims).to_numpy()
