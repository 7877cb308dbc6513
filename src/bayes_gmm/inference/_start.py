"""Sampler start points from an EM fit, in the variables of the PyMC model, jittered per chain."""

from __future__ import annotations

import numpy as np

from bayes_gmm.covariance import get_structure
from bayes_gmm.em_baseline import EMResult
from bayes_gmm.models._covariance_priors import COVARIANCE_PRIORS
from bayes_gmm.models._lkj import packed_row_index

# Components with (almost) no weight would start the simplex transform at log(0).
_MIN_START_WEIGHT = 1e-3


def start_values(em: EMResult, covariance_type: str) -> dict[str, np.ndarray]:
    """Values of the model's free variables at the EM solution (constrained space).

    The EM fit may use a different covariance type from the model (for example a "full" EM fit to start
    a "diag" model); its covariances are converted to the model's structure.
    """
    weights = np.maximum(np.asarray(em.weights, dtype=float), _MIN_START_WEIGHT)
    weights = weights / weights.sum()
    covariances = get_structure(covariance_type).from_full(em.full_covariances(), weights)
    return {"weights": weights, "means": np.array(em.means, dtype=float)} | COVARIANCE_PRIORS[
        covariance_type
    ].free_values(covariances)


def jittered_start_values(
    em: EMResult, covariance_type: str, n_chains: int, *, jitter: float, rng: np.random.Generator
) -> list[dict[str, np.ndarray]]:
    """One start point per chain: the EM solution with small multiplicative / scaled perturbations.

    Means move by ``jitter`` times the component's standard deviation per feature; weights and scales
    are multiplied by ``exp(N(0, jitter))``. All chains keep the EM labelling.
    """
    base = start_values(em, covariance_type)
    sd = np.sqrt(np.diagonal(em.full_covariances(), axis1=1, axis2=2))
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
