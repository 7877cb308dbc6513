"""Default priors for the Bayesian GMM, scaled to the data so that results do not depend on units."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

#: Default scale of the variances' inverse-gamma prior, as a fraction of the data's variance per feature.
DEFAULT_VARIANCE_FRACTION = 0.005


@dataclass(frozen=True, kw_only=True)
class GMMPriors:
    """Hyper-parameters of the Bayesian GMM's priors.

    Any field left as ``None`` is filled in from the data by :meth:`resolve`, so the default priors are
    weakly informative on the data's own scale: rescaling a feature rescales the prior with it.

    Parameters
    ----------
    weights_concentration : float or array of shape (n_components,), default 1.0
        Dirichlet concentration of the mixture weights. ``1`` is uniform over the simplex; a small value
        (e.g. ``0.01``) gives a sparse ("overfitted") mixture that empties unneeded components.
    means_loc : array of shape (n_features,), optional
        Centre of the Normal prior on every component mean. Default: the data mean.
    means_scale : array of shape (n_features,), optional
        Standard deviation of the Normal prior on the means. Default: twice the data's standard deviation
        per feature, so every mean lies well inside the prior's bulk.
    variance_shape : float, default 0.5
        Shape of the inverse-gamma prior on every component variance (each feature's variance in "full",
        "tied" and "diag"; the one variance of "spherical"). Its density vanishes as a variance goes to
        zero, which keeps a component from collapsing onto a few points (see
        :mod:`bayes_gmm.models._variance_prior`). With ``0.5`` the reciprocal of a standard deviation is
        half-normal, and the standard deviation's upper tail is as heavy as a half-Cauchy's.
    variance_scale : array of shape (n_features,), optional
        Scale of that inverse-gamma prior, per feature (the spherical models use the mean over features).
        Default: ``var_d / 200``, so that with the default shape ``1 / sd ~ HalfNormal(10 / sd_d)``: a
        component's standard deviation has prior median ``0.15 sd_d``, 5% below ``0.05 sd_d`` and 8% above
        ``sd_d``. Its pull on a cluster's variance is that of adding ``2 variance_scale / n_k`` to it (n_k
        points): a few per cent for a cluster of 30 points with a tenth of the data's spread.
    lkj_eta : float, default 2.0
        Shape of the LKJ prior on correlation matrices (``full`` and ``tied``): ``1`` is uniform over
        correlations, ``2`` mildly favours weaker correlations.

    Notes
    -----
    Earlier versions had ``sd_scale``, the scale of a half-normal prior on the standard deviations; it left
    the posterior improper on data with repeated values and is replaced by ``variance_shape`` and
    ``variance_scale`` (``variance_scale = sd_scale**2 / 200`` keeps its scale in the new prior's terms).
    All fields are keyword-only.
    """

    weights_concentration: float | np.ndarray = 1.0
    means_loc: np.ndarray | None = None
    means_scale: np.ndarray | None = None
    variance_shape: float = 0.5
    variance_scale: np.ndarray | None = None
    lkj_eta: float = 2.0

    def resolve(self, X: np.ndarray, n_components: int, sample_weight: np.ndarray | None = None) -> GMMPriors:
        """Return a copy with every ``None`` replaced by its data-scaled default and arrays checked.

        The defaults use the data's (weighted, with `sample_weight`) mean and standard deviation, from
        :func:`data_moments`.
        """
        n_features = X.shape[1]
        mean, sd = data_moments(X, sample_weight)
        defaults = {
            "means_loc": mean,
            "means_scale": 2.0 * sd,
            "variance_scale": DEFAULT_VARIANCE_FRACTION * np.square(sd),
        }
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, default in defaults.items():
            values[name] = default if values[name] is None else values[name]
            values[name] = _as_vector(values[name], name, n_features, positive=name != "means_loc")
        values["weights_concentration"] = _as_vector(
            values["weights_concentration"], "weights_concentration", n_components, positive=True
        )
        for name, example in (("variance_shape", 0.5), ("lkj_eta", 2.0)):
            try:
                value = float(values[name])
            except (TypeError, ValueError):
                value = np.nan
            if not np.isfinite(value) or value <= 0:
                raise ValueError(
                    f"{name} must be a finite number > 0; got {values[name]!r}. Use e.g. {example}."
                )
            values[name] = value
        return replace(self, **values)


def data_moments(X: np.ndarray, sample_weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each feature, weighted by `sample_weight` when given.

    Weighted moments are those of the data with rows repeated by integer weights. A constant feature, or
    data with total weight at most 1, gets a standard deviation of 1, so its priors are still proper.
    """
    weights = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    mean = np.average(X, axis=0, weights=weights)
    if weights.sum() <= 1:
        return mean, np.ones(X.shape[1])
    sd = np.sqrt(np.average(np.square(X - mean), axis=0, weights=weights))
    return mean, np.where(sd > 0, sd, 1.0)


def _as_vector(value, name: str, size: int, *, positive: bool) -> np.ndarray:
    arr = np.broadcast_to(np.asarray(value, dtype=np.float64), (size,)) if np.ndim(value) == 0 else None
    if arr is None:
        arr = np.asarray(value, dtype=np.float64)
        if arr.shape != (size,):
            raise ValueError(
                f"{name} must be a scalar or have shape ({size},); got shape {arr.shape}. "
                f"Give one value per {'component' if name == 'weights_concentration' else 'feature'}."
            )
    if not np.all(np.isfinite(arr)) or (positive and np.any(arr <= 0)):
        raise ValueError(
            f"{name} must be finite{' and > 0' if positive else ''}; got {value!r}. "
            f"Leave it as None for the data-scaled default."
        )
    return np.array(arr)
