"""Candidate partitions for :func:`~bayes_gmm.inference.point_partition`, produced from the posterior.

One job: propose partitions to be scored. Candidates come from the per-draw responsibilities (one
partition sampled from each draw, :func:`sample_partitions`; the per-draw most probable assignment,
:func:`argmax_partitions`) and from hierarchical clustering of ``1 - similarity``
(:func:`linkage_partitions`); :func:`candidate_partitions` pools them.
"""

from __future__ import annotations

import numbers

import numpy as np

from bayes_gmm._validation import check_positive_int, random_generator
from bayes_gmm.inference._partition_checks import _CHUNK_BYTES, _check_resp, _check_similarity

__all__ = ["argmax_partitions", "candidate_partitions", "linkage_partitions", "sample_partitions"]

LINKAGE_METHODS = ("average", "complete", "single", "weighted")


def sample_partitions(resp, n: int | None = None, *, random_seed=None, atol: float = 1e-6) -> np.ndarray:
    """Draw hard partitions ``z_i ~ Categorical(resp[s, i, :])`` from per-draw responsibilities.

    Parameters
    ----------
    resp : array_like of shape (n_draws, n_obs, n_components) or (n_chains, n_draws, n_obs, n_components)
        Responsibilities of each posterior draw; rows sum to 1.
    n : int, optional
        Number of partitions: one from each of `n` posterior draws chosen at random without replacement
        (kept in draw order). Default: one from every draw.
    random_seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Seed for the draw selection and the sampling.
    atol : float, default 1e-6
        Tolerance on the row sums of `resp`.

    Returns
    -------
    ndarray of int64, shape (n, n_obs)
        Component labels (labels keep the draw's component numbering).

    Raises
    ------
    ValueError
        If `resp` is invalid (see :func:`co_clustering_matrix`) or `n` is not in ``1 .. n_draws``.
    """
    resp = _check_resp(resp, atol=atol)
    rng = random_generator(random_seed)
    return _sample(resp, _select_draws(resp.shape[0], n, rng), rng)


def _sample(resp: np.ndarray, draws: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Inverse-CDF sampling of one label per observation from each selected draw, in chunks of draws."""
    n_obs, n_comp = resp.shape[1:]
    out = np.empty((draws.size, n_obs), dtype=np.int64)
    step = max(1, _CHUNK_BYTES // (8 * n_obs * n_comp))
    for start in range(0, draws.size, step):
        block = resp[draws[start : start + step]]
        cum = np.cumsum(block, axis=-1)
        u = rng.random((*block.shape[:2], 1)) * cum[..., -1:]
        out[start : start + step] = np.minimum(np.sum(cum <= u, axis=-1), n_comp - 1)
    return out


def _argmax(resp: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Per-draw most probable component, without copying `resp` when every draw is used."""
    if draws.size == resp.shape[0]:  # draws are sorted and distinct: all of them, in order
        return np.argmax(resp, axis=-1).astype(np.int64)
    return np.argmax(resp[draws], axis=-1).astype(np.int64)


def argmax_partitions(resp, n: int | None = None, *, random_seed=None, atol: float = 1e-6) -> np.ndarray:
    """The most probable component of every observation, per posterior draw.

    Parameters
    ----------
    resp : array_like of shape (n_draws, n_obs, n_components) or (n_chains, n_draws, n_obs, n_components)
        Responsibilities of each posterior draw; rows sum to 1.
    n : int, optional
        Use `n` posterior draws chosen at random without replacement (kept in draw order). Default: all.
    random_seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Seed for the draw selection (unused when `n` is None).
    atol : float, default 1e-6
        Tolerance on the row sums of `resp`.

    Returns
    -------
    ndarray of int64, shape (n, n_obs)
    """
    resp = _check_resp(resp, atol=atol)
    draws = _select_draws(resp.shape[0], n, random_generator(random_seed))
    return _argmax(resp, draws)


def linkage_partitions(similarity, *, max_clusters: int = 10, method: str = "average") -> np.ndarray:
    """Partitions from hierarchical clustering of ``1 - similarity``, cut at 1 .. `max_clusters` clusters.

    A cheap source of good candidates for :func:`point_partition` (R's ``mcclust`` uses average and
    complete linkage of the similarity matrix the same way).

    Parameters
    ----------
    similarity : array_like of shape (n_obs, n_obs)
        Posterior similarity matrix.
    max_clusters : int, default 10
        Largest number of clusters to cut the tree at (capped at `n_obs`).
    method : {"average", "complete", "single", "weighted"}, default "average"
        Linkage method of :func:`scipy.cluster.hierarchy.linkage`.

    Returns
    -------
    ndarray of int64, shape (min(max_clusters, n_obs), n_obs)
        Row ``k - 1`` is the cut with (at most) ``k`` clusters, labelled from 0.
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    if method not in LINKAGE_METHODS:
        raise ValueError(
            f"method must be one of {LINKAGE_METHODS}; got {method!r}. Methods such as 'ward' need Euclidean "
            f"distances, which 1 - similarity is not; use 'average'."
        )
    max_clusters = check_positive_int(max_clusters, "max_clusters", minimum=1)
    sim = _check_similarity(similarity)
    n_obs = sim.shape[0]
    n_cuts = min(max_clusters, n_obs)
    if n_obs == 1:
        return np.zeros((1, 1), dtype=np.int64)
    dist = 1.0 - sim
    np.fill_diagonal(dist, 0.0)
    tree = linkage(squareform(dist, checks=False), method=method)
    out = np.empty((n_cuts, n_obs), dtype=np.int64)
    for k in range(1, n_cuts + 1):
        out[k - 1] = fcluster(tree, t=k, criterion="maxclust") - 1
    return out


def candidate_partitions(
    resp,
    *,
    n: int | None = None,
    sampled: bool = True,
    argmax: bool = True,
    similarity=None,
    max_clusters: int | None = None,
    random_seed=None,
    atol: float = 1e-6,
) -> np.ndarray:
    """Candidate partitions for :func:`point_partition`, pooled from several sources.

    Parameters
    ----------
    resp : array_like of shape (n_draws, n_obs, n_components) or (n_chains, n_draws, n_obs, n_components)
        Responsibilities of each posterior draw; rows sum to 1.
    n : int, optional
        Number of posterior draws to use (chosen at random, the same draws for both per-draw sources).
        Default: all draws.
    sampled : bool, default True
        Include one partition sampled from the responsibilities of each used draw
        (:func:`sample_partitions`).
    argmax : bool, default True
        Include the per-draw most probable assignment of each used draw (:func:`argmax_partitions`).
    similarity : array_like of shape (n_obs, n_obs), optional
        If given, also include average-linkage cuts of ``1 - similarity`` at 1 .. `max_clusters` clusters
        (:func:`linkage_partitions`).
    max_clusters : int, optional
        Largest cut for the linkage candidates; default ``n_components`` of `resp`.
    random_seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Seed for the draw selection and the sampling.
    atol : float, default 1e-6
        Tolerance on the row sums of `resp`.

    Returns
    -------
    ndarray of int64, shape (n_candidates, n_obs)
        Stacked candidates (sampled, then argmax, then linkage cuts); duplicates are not removed
        (:func:`point_partition` evaluates each distinct partition once).

    Raises
    ------
    ValueError
        If no source is selected, or an input is invalid.
    """
    if not (sampled or argmax or similarity is not None):
        raise ValueError(
            "candidate_partitions needs at least one source of candidates; got sampled=False, argmax=False "
            "and similarity=None. Set sampled=True or argmax=True, or pass similarity."
        )
    resp = _check_resp(resp, atol=atol)
    rng = random_generator(random_seed)
    draws = _select_draws(resp.shape[0], n, rng)
    parts = []
    if sampled:
        parts.append(_sample(resp, draws, rng))
    if argmax:
        parts.append(_argmax(resp, draws))
    if similarity is not None:
        sim = _check_similarity(similarity)
        if sim.shape[0] != resp.shape[1]:
            raise ValueError(
                f"similarity has {sim.shape[0]} rows but resp has {resp.shape[1]} observations; pass the "
                f"similarity matrix computed from the same responsibilities."
            )
        k = resp.shape[2] if max_clusters is None else max_clusters
        parts.append(linkage_partitions(sim, max_clusters=k))
    return np.concatenate(parts, axis=0)


def _select_draws(n_draws: int, n, rng: np.random.Generator) -> np.ndarray:
    if n is None:
        return np.arange(n_draws)
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or not 1 <= n <= n_draws:
        raise ValueError(
            f"n must be an integer from 1 to the number of draws ({n_draws}); got {n!r}. Pass n=None to "
            f"use every draw."
        )
    return np.sort(rng.choice(n_draws, size=int(n), replace=False))
