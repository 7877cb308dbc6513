"""Covariance structures of Gaussian mixtures and the Gaussian math over them.

One owner for each structure (:mod:`bayes_gmm.covariance._structures`): shapes, parameter counts,
expansion to full matrices, precision Cholesky factors, log-determinants and the EM M-step. Beside it, the
NumPy log-densities (:mod:`~bayes_gmm.covariance._densities`) and the fused numba E-step kernel
(:mod:`~bayes_gmm.covariance._kernels`) that the EM baseline and the Bayesian models' likelihood share.
"""

from bayes_gmm._lazy import lazy_exports

#: Public name -> the module that defines it. Imported on first use (PEP 562), so that the process that
#: compiles nutpie's model kernel (which needs only the E-step kernel) imports no SciPy.
_EXPORTS = {
    "LOG_2PI": "._densities",
    "covariance_cholesky": "._densities",
    "half_log_det": "._densities",
    "log_gaussian_densities": "._densities",
    "log_responsibilities": "._densities",
    "weighted_log_densities": "._densities",
    "COVARIANCE_TYPES": "._structures",
    "MCLUST_VVE": "._structures",
    "STRUCTURES": "._structures",
    "CovarianceStructure": "._structures",
    "get_structure": "._structures",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
