"""Maximum-likelihood Gaussian mixtures by expectation-maximisation (NumPy + numba, no scikit-learn).

Used to cross-check the Bayesian fits, to start the samplers near the mode, and as a fast fit of its own.
"""

from bayes_gmm.em_baseline._fit import fit_em
from bayes_gmm.em_baseline._init import INIT_METHODS, kmeans_plusplus
from bayes_gmm.em_baseline._result import EMResult, n_free_parameters
from bayes_gmm.em_baseline._search import ModelSearch, search_models

__all__ = [
    "INIT_METHODS",
    "EMResult",
    "ModelSearch",
    "fit_em",
    "kmeans_plusplus",
    "n_free_parameters",
    "search_models",
]
