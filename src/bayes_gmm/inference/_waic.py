"""WAIC from a pointwise log-likelihood array, in plain NumPy.

The definitions match :func:`arviz.waic` (ArviZ 0.23, ``scale="log"``) exactly, so that numbers reported by
this package and by ArviZ agree to rounding:

- ``lppd_i = log(mean_s exp(log_lik[s, i]))`` (computed with ``logsumexp``),
- ``p_waic_i = var_s(log_lik[s, i])`` with ``ddof=0`` (ArviZ uses xarray's ``.var``, whose default is
  ``ddof=0``),
- ``elpd_i = lppd_i - p_waic_i``, ``elpd_waic = sum_i elpd_i``, ``p_waic = sum_i p_waic_i``,
- ``se = sqrt(n_observations * var_i(elpd_i))`` with ``ddof=0`` (``np.var``),
- ``warning = any(p_waic_i > 0.4)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from bayes_gmm._validation import as_float_array

__all__ = ["WAICResult", "waic"]

#: Pointwise posterior variance of the log-likelihood above which WAIC is flagged as unreliable
#: (Vehtari, Gelman & Gabry 2017; the same threshold as ArviZ).
WAIC_VARIANCE_THRESHOLD = 0.4


@dataclass(frozen=True, eq=False)
class WAICResult:
    """Widely applicable information criterion on the log scale (higher is better).

    Attributes
    ----------
    elpd : float
        ``elpd_waic``, the estimated expected log pointwise predictive density, summed over observations.
    se : float
        Standard error of `elpd`: ``sqrt(n_observations * var(pointwise))`` (``ddof=0``, as ArviZ).
    p_waic : float
        Effective number of parameters: the sum over observations of the posterior variance
        (``ddof=0``) of the log-likelihood.
    pointwise : ndarray of shape (n_observations,)
        ``elpd_waic_i``; sums to `elpd`. Read-only.
    warning : bool
        True when the posterior variance of the log-likelihood exceeds 0.4 for at least one observation,
        which is a sign that WAIC may be unreliable; prefer PSIS-LOO (``arviz.loo``) then.
    n_samples : int
        Number of posterior samples (chains times draws).
    n_observations : int
        Number of observations.
    """

    elpd: float
    se: float
    p_waic: float
    pointwise: np.ndarray
    warning: bool
    n_samples: int
    n_observations: int


def waic(log_lik) -> WAICResult:
    """Compute WAIC from the pointwise log-likelihood of posterior draws.

    Parameters
    ----------
    log_lik : array_like of shape (n_chains, n_draws, n_observations) or (n_samples, n_observations)
        ``log p(y_i | theta_s)`` for each posterior sample and observation, e.g.
        ``idata.log_likelihood["y"].values`` when its dimensions are ``(chain, draw, obs_id)``. For a mixture
        model this must be the log-likelihood with the component assignments marginalised out. All values
        must be finite.

    Returns
    -------
    WAICResult
        `elpd`, `se`, `p_waic`, `pointwise`, `warning`, `n_samples` and `n_observations`, with the same
        definitions as ``arviz.waic(idata, scale="log", pointwise=True)`` (see the module docstring).

    Raises
    ------
    ValueError
        If `log_lik` is not 2-D or 3-D, has fewer than two samples or no observations, or contains NaN or
        infinite values.
    TypeError
        If `log_lik` cannot be converted to a float array.

    Notes
    -----
    Unlike ArviZ, no warning is issued when the variance threshold is exceeded; inspect
    :attr:`WAICResult.warning` instead.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> result = waic(rng.normal(-1.0, 0.1, size=(4, 100, 20)))
    >>> result.n_samples, result.n_observations
    (400, 20)
    """
    arr = _check_log_lik(log_lik)
    n_samples, n_obs = arr.shape

    lppd_i = logsumexp(arr, axis=0) - np.log(n_samples)
    p_waic_i = np.var(arr, axis=0)  # ddof=0, as xarray's .var in arviz.waic
    pointwise = lppd_i - p_waic_i
    pointwise.setflags(write=False)

    return WAICResult(
        elpd=float(np.sum(pointwise)),
        se=float(np.sqrt(n_obs * np.var(pointwise))),
        p_waic=float(np.sum(p_waic_i)),
        pointwise=pointwise,
        warning=bool(np.any(p_waic_i > WAIC_VARIANCE_THRESHOLD)),
        n_samples=int(n_samples),
        n_observations=int(n_obs),
    )


def _check_log_lik(log_lik) -> np.ndarray:
    """Return `log_lik` as a float64 array of shape (n_samples, n_observations), or raise."""
    arr = as_float_array(
        log_lik,
        "log_lik",
        "a numeric array of shape (n_chains, n_draws, n_observations) or (n_samples, n_observations)",
    )
    if arr.ndim == 3:
        arr = arr.reshape(arr.shape[0] * arr.shape[1], arr.shape[2])
    elif arr.ndim != 2:
        raise ValueError(
            f"log_lik must be 3-D (n_chains, n_draws, n_observations) or 2-D (n_samples, n_observations); "
            f"got an array with {arr.ndim} dimension(s) and shape {arr.shape}. For multivariate "
            f"observations pass the log-likelihood per observation (summed over features), or flatten the "
            f"observation dimensions into one."
        )
    if arr.shape[0] < 2:
        raise ValueError(
            f"log_lik must hold at least 2 posterior samples to estimate the variance term; got "
            f"{arr.shape[0]} (shape after stacking chains and draws: {arr.shape}). Pass more draws."
        )
    if arr.shape[1] < 1:
        raise ValueError(f"log_lik must hold at least 1 observation; got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        n_nan = int(np.count_nonzero(np.isnan(arr)))
        n_inf = int(np.count_nonzero(np.isinf(arr)))
        bad_obs = np.flatnonzero(~np.all(np.isfinite(arr), axis=0))
        raise ValueError(
            f"log_lik must contain only finite values; found {n_nan} NaN and {n_inf} infinite value(s) in "
            f"{bad_obs.size} observation(s), first at observation {bad_obs[0]}. Check the model's "
            f"log-likelihood (e.g. a collapsed component or data outside the support) and recompute it."
        )
    return arr
