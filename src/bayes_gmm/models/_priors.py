"""Default priors for the Bayesian GMM, scaled to the data so that results do not depend on units."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np


@dataclass(frozen=True)
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
    sd_scale : array of shape (n_features,), optional
        Scale of the HalfNormal prior on each component's standard deviations (per feature; the
        spherical model uses the root mean square over features). Default: the data's standard deviation
        per feature, which no cluster's spread should exceed by much.
    lkj_eta : float, default 2.0
        Shape of the LKJ prior on correlation matrices (``full`` and ``tied``): ``1`` is uniform over
        correlations, ``2`` mildly favours weaker correlations.
    """

    weights_concentration: float | np.ndarray = 1.0
    means_loc: np.ndarray | None = None
    means_scale: np.ndarray | None = None
    sd_scale: np.ndarray | None = None
    lkj_eta: float = 2.0

    def resolve(self, X: np.ndarray, n_components: int) -> GMMPriors:
        """Return a copy with every ``None`` replaced by its data-scaled default and arrays checked."""
        n_features = X.shape[1]
        sd = X.std(axis=0) if X.shape[0] > 1 else np.ones(n_features)
        sd = np.where(sd > 0, sd, 1.0)  # a constant feature still gets a proper prior
        defaults = {"means_loc": X.mean(axis=0), "means_scale": 2.0 * sd, "sd_scale": sd}
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, default in defaults.items():
            values[name] = default if values[name] is None else values[name]
            values[name] = _as_vector(values[name], name, n_features, positive=name != "means_loc")
        values["weights_concentration"] = _as_vector(
            values["weights_concentration"], "weights_concentration", n_components, positive=True
        )
        eta = float(values["lkj_eta"])
        if not np.isfinite(eta) or eta <= 0:
            raise ValueError(f"lkj_eta must be a finite number > 0; got {values['lkj_eta']!r}. Use e.g. 2.0.")
        values["lkj_eta"] = eta
        return replace(self, **values)


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
