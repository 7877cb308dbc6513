"""PyMC generative models of Gaussian mixtures, with the discrete assignments marginalised out."""

from bayes_gmm.models._builder import COVARIANCE_PRIORS, DATA, FEATURE_COV, OBSERVED, build_model
from bayes_gmm.models._likelihood import component_log_densities, make_mixture_logp
from bayes_gmm.models._priors import GMMPriors

__all__ = [
    "COVARIANCE_PRIORS",
    "DATA",
    "FEATURE_COV",
    "OBSERVED",
    "GMMPriors",
    "build_model",
    "component_log_densities",
    "make_mixture_logp",
]
