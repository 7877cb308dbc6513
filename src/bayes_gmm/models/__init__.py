"""PyMC generative models of Gaussian mixtures, with the discrete assignments marginalised out.

The names below are imported on first use (PEP 562), so that importing one of the package's numba kernels
(:mod:`bayes_gmm.models._model_kernel`, in the process that compiles it) does not import PyMC.
"""

import importlib

#: Public name -> the module that defines it.
_EXPORTS = {
    "COVARIANCE_PRIORS": "_builder",
    "DATA": "_builder",
    "FEATURE_COV": "_builder",
    "OBSERVED": "_builder",
    "build_model": "_builder",
    "component_log_densities": "_likelihood",
    "make_mixture_logp": "_likelihood",
    "GMMPriors": "_priors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return [*globals(), *_EXPORTS]
