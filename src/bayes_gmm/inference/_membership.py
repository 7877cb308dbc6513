"""Who belongs where, and how sure we are: membership probabilities from a posterior or an EM fit.

For a Bayesian fit the per-draw responsibilities ``P(z_i = k | x_i, theta_s)`` are computed for every
posterior draw ``theta_s`` and summarised per observation and component: their mean (the posterior
probability of membership), an equal-tailed credible interval, the most probable component and the entropy
of the membership vector. Averaging over draws is only meaningful in one labelling, which is why
:func:`bayes_gmm.inference.fit_gmm` relabels every draw to the EM labelling first; the co-clustering
matrix (:func:`co_clustering`) needs no labelling at all.
"""

from __future__ import annotations

import numbers

import numpy as np
import xarray as xr
from scipy.special import logsumexp

from bayes_gmm.covariance import weighted_log_densities
from bayes_gmm.inference._coclustering import co_clustering_matrix
from bayes_gmm.inference._draws import FitDraws, fit_draws
from bayes_gmm.inference._partition_candidates import candidate_partitions
from bayes_gmm.inference._partition_loss import PartitionEstimate, point_partition

#: Bytes of work memory one chunk of draws may use when the responsibilities are computed.
_CHUNK_BYTES = 64 * 2**20


def draw_responsibilities(idata, X=None, *, max_draws: int | None = None) -> np.ndarray:
    """Per-draw responsibilities ``P(z_i = k | x_i, theta_s)`` for every posterior draw.

    Parameters
    ----------
    idata : xarray.DataTree
        A fit from :func:`bayes_gmm.inference.fit_gmm` (posterior variables ``weights``, ``means`` and
        ``covariances``, already relabelled).
    X : array-like of shape (n_samples, n_features), optional
        Points to assign; by default the observed (training) data stored in `idata`. New points work the
        same way: their responsibilities are computed from each draw's parameters.
    max_draws : int, optional
        Use at most this many draws, chosen evenly over the pooled chains (all by default).

    Returns
    -------
    ndarray of shape (n_draws, n_samples, n_components)
        Rows sum to one; draws are pooled over chains, chain-major.
    """
    draws = fit_draws(idata, X, func="draw_responsibilities", max_draws=max_draws, em_allowed=False)
    return _draw_responsibilities(draws, draws.X)


def _draw_responsibilities(draws: FitDraws, X: np.ndarray) -> np.ndarray:
    """Responsibilities (n_draws, n_samples, K) of every draw at `X`, computed in chunks of draws."""
    return np.concatenate(
        [
            _responsibilities(X, draws.weights[c], draws.means[c], draws.covariances[c])
            for c in _chunks(draws.n_draws, X.shape[0], draws.n_components, draws.n_features)
        ]
    )


def _chunks(n_draws: int, n_samples: int, n_components: int, n_features: int) -> list[slice]:
    """Slices of draws whose batched work arrays stay near _CHUNK_BYTES."""
    step = max(1, _CHUNK_BYTES // max(1, n_samples * n_components * (n_features + 2) * 8))
    return [slice(start, min(start + step, n_draws)) for start in range(0, n_draws, step)]


def _responsibilities(X, weights, means, covariances) -> np.ndarray:
    """Responsibilities (S, N, K), normalised in log space; never NaN.

    A point so far from every component that all its densities underflow to 0 goes to the component
    nearest in Mahalanobis distance (the limit of the responsibilities as the point moves away).
    """
    log_joint = weighted_log_densities(X, weights, means, covariances)
    top = log_joint.max(axis=-1, keepdims=True)
    lost = ~np.isfinite(top[..., 0])
    resp = np.exp(log_joint - np.where(lost[..., None], 0.0, top))
    resp /= np.where(lost[..., None], 1.0, resp.sum(axis=-1, keepdims=True))
    if lost.any():
        draw, point = np.nonzero(lost)
        resp[draw, point] = nearest_components(X[point], weights[draw], means[draw], covariances[draw])
    return resp


def nearest_components(points, weights, means, covariances) -> np.ndarray:
    """One-hot responsibilities (L, K) of the component nearest each point in Mahalanobis distance.

    Row l compares ``points[l]`` with the components ``means[l]``, ``covariances[l]`` (weights > 0 only);
    the differences are scaled by their largest entry first, so that distances that overflow float64
    can still be compared. Ties share the responsibility equally.
    """
    diff = points[:, None, :] - means  # (L, K, D)
    scale = np.abs(diff).max(axis=(1, 2), keepdims=True)
    diff = diff / np.where(scale > 0, scale, 1.0)
    with np.errstate(over="ignore", invalid="ignore"):
        y = np.linalg.solve(np.linalg.cholesky(covariances), diff[..., None])[..., 0]
        distance = np.einsum("lkd,lkd->lk", y, y)
    distance[np.isnan(distance) | ~(weights > 0)] = np.inf
    nearest = distance == distance.min(axis=1, keepdims=True)
    return nearest / nearest.sum(axis=1, keepdims=True)


def posterior_log_density(fit, X=None, *, max_draws: int | None = None) -> np.ndarray:
    """Log predictive density of each point: ``log mean_s p(x_i | theta_s)`` (EM: ``log p(x_i | theta_hat)``).

    Useful as an anomaly score (low values: points unlike the data the model was fitted to) and for
    density estimation at new points.

    Parameters
    ----------
    fit : xarray.DataTree or EMResult
    X : array-like of shape (n_samples, n_features), optional
        Default: the training data stored in `fit` (required for an EM fit).
    max_draws : int, optional
        Use at most this many evenly thinned posterior draws (all by default).

    Returns
    -------
    ndarray of shape (n_samples,)
    """
    draws = fit_draws(fit, X, func="posterior_log_density", max_draws=max_draws)
    return mean_log_density(draws.X, draws.weights, draws.means, draws.covariances)


def mean_log_density(X, weights, means, covariances) -> np.ndarray:
    """``log mean_s sum_k w_sk N(x_i | mu_sk, Sigma_sk)`` over the given draws, shape (n_samples,)."""
    per_draw = pointwise_log_likelihood(X, weights, means, covariances)
    return logsumexp(per_draw, axis=0) - np.log(per_draw.shape[0])


def pointwise_log_likelihood(X, weights, means, covariances) -> np.ndarray:
    """``log sum_k w_sk N(x_i | mu_sk, Sigma_sk)`` for every draw s and point i, shape (n_draws, n_samples).

    NumPy, batched over chunks of draws: nothing to compile, which a PyTensor function of the model would.
    """
    return np.concatenate(
        [
            logsumexp(weighted_log_densities(X, weights[c], means[c], covariances[c]), axis=-1)
            for c in _chunks(weights.shape[0], X.shape[0], means.shape[1], means.shape[2])
        ]
    )


def membership_probabilities(fit, X=None, *, interval_prob: float = 0.9, max_draws: int | None = None):
    """Posterior (or EM) probability that each observation belongs to each component.

    Parameters
    ----------
    fit : xarray.DataTree or EMResult
        A Bayesian fit from :func:`bayes_gmm.inference.fit_gmm`, or an EM fit from
        :func:`bayes_gmm.em_baseline.fit_em` (then there are no intervals: EM gives one point estimate).
    X : array-like of shape (n_samples, n_features), optional
        Points to assign; default the training data stored in `fit` (an EM fit stores none, so pass `X`).
        A DataFrame is matched to the fit's features by column name (any column order; a missing or
        unknown column is an error), and its index becomes the ``obs_id`` coordinate.
    interval_prob : float, default 0.9
        Probability mass of the equal-tailed credible interval of each membership probability.
    max_draws : int, optional
        Use at most this many posterior draws (evenly thinned); all by default.

    Returns
    -------
    xarray.Dataset
        Dims ``obs_id`` and ``component``, with coordinates: ``obs_id`` the fit's own for its training data,
        the index values of a DataFrame `X` (so ``.sel(obs_id=label)`` finds a row by its label), else
        0, 1, ...; ``component`` the fit's. Variables:

        - ``probability`` (obs_id, component): posterior mean of ``P(z_i = k | x_i, theta)`` (EM: the
          responsibility at the maximum-likelihood estimate); rows sum to one.
        - ``probability_lower``, ``probability_upper`` (obs_id, component): the credible interval
          (Bayesian fits only).
        - ``most_probable`` (obs_id): the component with the highest ``probability``.
        - ``max_probability`` (obs_id): that highest probability.
        - ``entropy`` (obs_id): ``-sum_k p_k log p_k`` of the membership probabilities, in nats; 0 for a
          certain assignment, ``log K`` at most.

        ``attrs`` say the source ("posterior" or "em"), the interval probability and the number of draws.
    """
    if (
        isinstance(interval_prob, bool)
        or not isinstance(interval_prob, numbers.Real)
        or not 0.0 < interval_prob < 1.0
    ):
        raise ValueError(f"interval_prob must be in (0, 1); got {interval_prob!r}. Use e.g. 0.9.")
    draws = fit_draws(fit, X, func="membership_probabilities", max_draws=max_draws)
    X, n_components = draws.X, draws.n_components
    tail = (1.0 - interval_prob) / 2.0
    mean, lower, upper = (np.empty((X.shape[0], n_components)) for _ in range(3))
    # Observations in blocks, so that the (draws x block x K) responsibilities stay near _CHUNK_BYTES.
    block = max(1, _CHUNK_BYTES // (8 * draws.n_draws * n_components * 4))
    for start in range(0, X.shape[0], block):
        rows = slice(start, start + block)
        resp = _draw_responsibilities(draws, X[rows])
        mean[rows] = resp.mean(axis=0)
        lower[rows], upper[rows] = np.quantile(resp, [tail, 1.0 - tail], axis=0)
    dataset = _summary(mean, draws.components, draws.obs_ids)
    if draws.source == "em":
        dataset.attrs.update(source="em", n_draws=0)
        return dataset
    dims = ("obs_id", "component")
    dataset["probability_lower"] = (dims, lower)
    dataset["probability_upper"] = (dims, upper)
    dataset.attrs.update(source="posterior", interval_prob=interval_prob, n_draws=draws.n_draws)
    return dataset


def _summary(probability: np.ndarray, components, obs_ids) -> xr.Dataset:
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(probability > 0.0, probability * np.log(probability), 0.0)
    coords = {"obs_id": obs_ids, "component": components}
    return xr.Dataset(
        {
            "probability": (("obs_id", "component"), probability),
            "most_probable": ("obs_id", np.asarray(components)[probability.argmax(axis=1)]),
            "max_probability": ("obs_id", probability.max(axis=1)),
            "entropy": ("obs_id", np.maximum(-terms.sum(axis=1), 0.0)),
        },
        coords=coords,
    )


def co_clustering(fit, X=None, *, max_draws: int | None = 1000) -> xr.DataArray:
    """Posterior probability that observations i and j belong to the same component.

    Label-invariant: it does not depend on how the draws are labelled, so it is immune to label
    switching. For an EM fit it is ``sum_k r_ik r_jk`` from the responsibilities.

    Parameters
    ----------
    fit : xarray.DataTree or EMResult
    X : array-like of shape (n_samples, n_features), optional
        Default: the training data stored in `fit` (required for an EM fit).
    max_draws : int or None, default 1000
        Evenly thinned posterior draws to use (the matrix costs n_draws x n_samples^2); None for all.

    Returns
    -------
    xarray.DataArray of shape (n_samples, n_samples)
        Dims ``obs_id`` and ``obs_id_2`` (both labelled as in :func:`membership_probabilities`: a
        DataFrame's index, else 0, 1, ...); symmetric with unit diagonal.
    """
    draws = fit_draws(fit, X, func="co_clustering", max_draws=max_draws)
    resp = _draw_responsibilities(draws, draws.X)
    obs_ids = draws.obs_ids
    return xr.DataArray(
        co_clustering_matrix(resp),
        dims=("obs_id", "obs_id_2"),
        coords={"obs_id": obs_ids, "obs_id_2": obs_ids},
    )


def posterior_partition(
    idata, X=None, *, loss: str = "vi", max_draws: int | None = 1000, random_seed=None
) -> PartitionEstimate:
    """One clustering that summarises the posterior: the candidate of least expected loss.

    Candidates are each used draw's sampled and most probable assignments plus cuts of a hierarchical
    clustering of the co-clustering matrix (:func:`candidate_partitions`); the expected loss is computed
    from the co-clustering matrix, so the result does not depend on how components are labelled.

    Parameters
    ----------
    idata : xarray.DataTree
        A fit from :func:`bayes_gmm.inference.fit_gmm`.
    X : array-like, optional
        Points to partition; default the training data.
    loss : {"vi", "binder"}, default "vi"
        Variation-of-information lower bound (favours fewer spurious small clusters) or Binder's loss.
    max_draws : int or None, default 1000
        Evenly thinned posterior draws to use; None for all.
    random_seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Seeds the sampled candidate partitions.

    Returns
    -------
    PartitionEstimate
        ``labels`` (0 for the largest cluster), ``n_clusters``, ``loss`` and the candidates' losses.
    """
    resp = draw_responsibilities(idata, X, max_draws=max_draws)
    similarity = co_clustering_matrix(resp)
    candidates = candidate_partitions(
        resp, similarity=similarity, max_clusters=resp.shape[2] + 1, random_seed=random_seed
    )
    return point_partition(similarity, candidates, loss=loss)
