"""PyMC generative models of Gaussian mixtures, with the discrete assignments marginalised out.

The names below are imported on first use (PEP 562), so that importing one of the package's numba kernels
(:mod:`bayes_gmm.models._model_kernel`, in the process that compiles it) does not import PyMC.
"""

from bayes_gmm._lazy import lazy_exports

#: Public name -> the module that defines it.
_EXPORTS = {
    "COVARIANCE_PRIORS": "._builder",
    "DATA": "._builder",
    "FEATURE_COV": "._builder",
    "OBSERVED": "._builder",
    "build_model": "._builder",
    "component_log_densities": "._likelihood",
    "make_mixture_logp": "._likelihood",
    "GMMPriors": "._priors",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
