"""Sampler start points from an EM fit, in the variables of the PyMC model, jittered per chain."""

from __future__ import annotations

import numpy as np

from bayes_gmm.em_baseline import EMResult
from bayes_gmm.models._lkj import packed_row_index

# Components with (almost) no weight would start the simplex transform at log(0).
_MIN_START_WEIGHT = 1e-3


def em_full_covariances(em: EMResult) -> np.ndarray:
    """The EM fit's covariances as an array of shape (n_components, n_features, n_features)."""
    k, d = em.n_components, em.n_features
    cov = np.asarray(em.covariances)
    if em.covariance_type == "full":
        return cov.copy()
    if em.covariance_type == "tied":
        return np.broadcast_to(cov, (k, d, d)).copy()
    if em.covariance_type == "diag":
        return cov[:, :, None] * np.eye(d)
    return cov[:, None, None] * np.eye(d)


def start_values(em: EMResult, covariance_type: str) -> dict[str, np.ndarray]:
    """Values of the model's free variables at the EM solution (constrained space).

    The EM fit may use a different covariance type from the model (for example a "full" EM fit to start
    a "diag" model); the covariances are converted to the model's structure.
    """
    weights = np.maximum(np.asarray(em.weights, dtype=float), _MIN_START_WEIGHT)
    values = {"weights": weights / weights.sum(), "means": np.array(em.means, dtype=float)}
    cov = em_full_covariances(em)
    d = em.n_features
    rows, cols = np.tril_indices(d)
    if covariance_type == "full":
        values["chol_cov"] = np.linalg.cholesky(cov)[:, rows, cols]
    elif covariance_type == "tied":
        values["chol_cov"] = np.linalg.cholesky(np.einsum("k,kij->ij", values["weights"], cov))[rows, cols]
    elif covariance_type == "diag":
        values["sigma"] = np.sqrt(np.diagonal(cov, axis1=1, axis2=2))
    else:
        values["sigma"] = np.sqrt(np.trace(cov, axis1=1, axis2=2) / d)
    return values


def jittered_start_values(
    em: EMResult, covariance_type: str, n_chains: int, *, jitter: float, rng: np.random.Generator
) -> list[dict[str, np.ndarray]]:
    """One start point per chain: the EM solution with small multiplicative / scaled perturbations.

    Means move by ``jitter`` times the component's standard deviation per feature; weights and scales
    are multiplied by ``exp(N(0, jitter))``. All chains keep the EM labelling.
    """
    base = start_values(em, covariance_type)
    sd = np.sqrt(np.diagonal(em_full_covariances(em), axis1=1, axis2=2))
    row_of = packed_row_index(em.n_features)
    starts = []
    for _ in range(n_chains):
        start = {}
        weights = base["weights"] * np.exp(jitter * rng.standard_normal(base["weights"].shape))
        start["weights"] = weights / weights.sum()
        start["means"] = base["means"] + jitter * sd * rng.standard_normal(base["means"].shape)
        if "chol_cov" in base:
            # Scaling each row of a Cholesky factor by a positive number keeps it a valid factor.
            row_scale = np.exp(jitter * rng.standard_normal((*base["chol_cov"].shape[:-1], em.n_features)))
            start["chol_cov"] = base["chol_cov"] * row_scale[..., row_of]
        else:
            start["sigma"] = base["sigma"] * np.exp(jitter * rng.standard_normal(base["sigma"].shape))
        starts.append(start)
    return starts
