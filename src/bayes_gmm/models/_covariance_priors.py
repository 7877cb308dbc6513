"""The Bayesian side of each covariance structure: its prior in a PyMC model and its start values.

Which structures have a Bayesian model is this table (:data:`COVARIANCE_PRIORS`); everything else about a
structure (shapes, parameter counts, expansion, the EM M-step) lives in :mod:`bayes_gmm.covariance`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt

from bayes_gmm.models._lkj import lkj_cholesky_cov, unpack_cholesky
from bayes_gmm.models._priors import GMMPriors
from bayes_gmm.models._variance_prior import inverse_gamma_sd

#: Dimension of the packed lower-triangular Cholesky entries of ``chol_cov``.
PACKED = "packed_tril"


@dataclass(frozen=True)
class CovariancePrior:
    """How one covariance structure enters the PyMC model.

    Attributes
    ----------
    add_to_model : callable
        ``(priors, K, D) -> (scale, likelihood structure, (K, D, D) Cholesky factors)``, called inside the
        model context: adds the free variables and returns what the likelihood takes ("cholesky" factors
        (J, D, D) or "diagonal" standard deviations (K, D)) and the lower Cholesky factors of every
        component's covariance.
    free_values : callable
        ``(stored covariances) -> {free variable name: value}``, the model's covariance variables at given
        covariances in the structure's stored shape (start points from EM).
    """

    add_to_model: Callable
    free_values: Callable


def _packed_cholesky(covariances: np.ndarray) -> dict[str, np.ndarray]:
    rows, cols = np.tril_indices(covariances.shape[-1])
    return {"chol_cov": np.linalg.cholesky(covariances)[..., rows, cols]}


def _standard_deviations(covariances: np.ndarray) -> dict[str, np.ndarray]:
    return {"sigma": np.sqrt(covariances)}


def _lkj_cholesky(priors: GMMPriors, n_features: int, **shape):
    # Packed Cholesky factor(s) of LKJ covariances: one (tied) or a batch of them; returned unpacked.
    packed = lkj_cholesky_cov(
        "chol_cov",
        n=n_features,
        eta=priors.lkj_eta,
        variance_shape=priors.variance_shape,
        variance_scale=priors.variance_scale,
        **shape,
    )
    return unpack_cholesky(packed, n_features)


def _full_prior(priors: GMMPriors, n_components: int, n_features: int):
    chol = _lkj_cholesky(priors, n_features, batch_shape=(n_components,), dims=("component", PACKED))
    return chol, "cholesky", chol


def _tied_prior(priors: GMMPriors, n_components: int, n_features: int):
    chol = _lkj_cholesky(priors, n_features, dims=(PACKED,))
    return chol[None], "cholesky", pt.broadcast_to(chol, (n_components, n_features, n_features))


def _diag_prior(priors: GMMPriors, n_components: int, n_features: int):
    sigma = _sd("sigma", priors, priors.variance_scale, dims=("component", "feature"))
    return sigma, "diagonal", _diag_to_cholesky(sigma)


def _spherical_prior(priors: GMMPriors, n_components: int, n_features: int):
    sigma = _sd("sigma", priors, pt.mean(priors.variance_scale), dims="component")
    per_feature = pt.broadcast_to(sigma[:, None], (n_components, n_features))
    return per_feature, "diagonal", _diag_to_cholesky(per_feature)


def _equal_spherical_prior(priors: GMMPriors, n_components: int, n_features: int):
    # EII (and E for one feature): one standard deviation for every component and direction.
    sigma = _sd("sigma", priors, pt.mean(priors.variance_scale), size=())
    per_feature = pt.broadcast_to(sigma, (n_components, n_features))
    return per_feature, "diagonal", _diag_to_cholesky(per_feature)


def _equal_diagonal_prior(priors: GMMPriors, n_components: int, n_features: int):
    # EEI: one diagonal covariance shared by every component.
    sigma = _sd("sigma", priors, priors.variance_scale, dims="feature")
    per_feature = pt.broadcast_to(sigma[None, :], (n_components, n_features))
    return per_feature, "diagonal", _diag_to_cholesky(per_feature)


def _first_sd(covariances: np.ndarray) -> dict[str, np.ndarray]:
    return {"sigma": np.sqrt(np.asarray(covariances)[0, 0, 0])}


def _first_diagonal_sd(covariances: np.ndarray) -> dict[str, np.ndarray]:
    return {"sigma": np.sqrt(np.diagonal(np.asarray(covariances)[0]))}


def _per_component_sd(covariances: np.ndarray) -> dict[str, np.ndarray]:
    return {"sigma": np.sqrt(np.asarray(covariances)[:, 0, 0])}


def _sd(name: str, priors: GMMPriors, variance_scale, **dims_or_size):
    # One prior for every standard deviation (the spherical models' scale: the mean over features).
    return inverse_gamma_sd(
        name, variance_shape=priors.variance_shape, variance_scale=variance_scale, **dims_or_size
    )


def _diag_to_cholesky(sd):
    return sd[..., :, None] * pt.eye(sd.shape[-1])


#: covariance_type -> its prior and start values; the priors' arrays are the model's ``pm.Data`` containers.
COVARIANCE_PRIORS: dict[str, CovariancePrior] = {
    "full": CovariancePrior(_full_prior, _packed_cholesky),
    "tied": CovariancePrior(_tied_prior, _packed_cholesky),
    "diag": CovariancePrior(_diag_prior, _standard_deviations),
    "spherical": CovariancePrior(_spherical_prior, _standard_deviations),
    "EII": CovariancePrior(_equal_spherical_prior, _first_sd),
    "EEI": CovariancePrior(_equal_diagonal_prior, _first_diagonal_sd),
    "E": CovariancePrior(_equal_spherical_prior, _first_sd),
    "V": CovariancePrior(_spherical_prior, _per_component_sd),
}
# mclust's names for scikit-learn's four structures.
COVARIANCE_PRIORS |= {"VVV": COVARIANCE_PRIORS["full"], "EEE": COVARIANCE_PRIORS["tied"]}
COVARIANCE_PRIORS |= {"VVI": COVARIANCE_PRIORS["diag"], "VII": COVARIANCE_PRIORS["spherical"]}


def check_bayesian_covariance_type(covariance_type: str) -> str:
    """Return `covariance_type` if it has a Bayesian model, else raise a ValueError naming those that do."""
    if covariance_type not in COVARIANCE_PRIORS:
        raise ValueError(
            f"covariance_type={covariance_type!r} has no Bayesian model (its constraints on volume, shape and "
            f"orientation have no standard prior here); Bayesian fits take {tuple(COVARIANCE_PRIORS)}. Fit it "
            f"by EM (fit_em, or --method em on the command line), or choose one of these."
        )
    return covariance_type
