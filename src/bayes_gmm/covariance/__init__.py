"""Covariance structures of Gaussian mixtures and the Gaussian math over them.

One owner for each structure (:mod:`bayes_gmm.covariance._structures`): shapes, parameter counts,
expansion to full matrices, precision Cholesky factors, log-determinants and the EM M-step. Beside it, the
NumPy log-densities (:mod:`~bayes_gmm.covariance._densities`) and the fused numba E-step kernel
(:mod:`~bayes_gmm.covariance._kernels`) that the EM baseline and the Bayesian models' likelihood share.
"""

from bayes_gmm.covariance._densities import (
    LOG_2PI,
    covariance_cholesky,
    half_log_det,
    log_gaussian_densities,
    log_responsibilities,
    weighted_log_densities,
)
from bayes_gmm.covariance._structures import (
    COVARIANCE_TYPES,
    MCLUST_VVE,
    STRUCTURES,
    CovarianceStructure,
    get_structure,
)

__all__ = [
    "COVARIANCE_TYPES",
    "LOG_2PI",
    "MCLUST_VVE",
    "STRUCTURES",
    "CovarianceStructure",
    "covariance_cholesky",
    "get_structure",
    "half_log_det",
    "log_gaussian_densities",
    "log_responsibilities",
    "weighted_log_densities",
]
