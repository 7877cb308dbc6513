"""bayes-gmm: Gaussian mixture models done the Bayesian way, with a fast EM baseline.

The front door: the estimators and the main functions of the subpackages, importable from here. Each name
is imported on first use (PEP 562), so ``import bayes_gmm`` is cheap and imports neither PyMC nor numba;
the subpackages (:mod:`bayes_gmm.em_baseline`, :mod:`bayes_gmm.inference`, :mod:`bayes_gmm.models`,
:mod:`bayes_gmm.plots`, ...) hold the rest.
"""

from bayes_gmm._lazy import lazy_exports
from bayes_gmm._version import __version__

#: Public name -> the module that defines it.
_EXPORTS = {
    # scikit-learn estimators
    "BayesianGaussianMixture": "bayes_gmm.estimators",
    "GaussianMixture": "bayes_gmm.estimators",
    # EM
    "EMResult": "bayes_gmm.em_baseline",
    "ModelSearch": "bayes_gmm.em_baseline",
    "fit_em": "bayes_gmm.em_baseline",
    "search_models": "bayes_gmm.em_baseline",
    # Bayesian fits and what is computed from them
    "KSelection": "bayes_gmm.inference",
    "co_clustering": "bayes_gmm.inference",
    "compare_with_em": "bayes_gmm.inference",
    "fit_coreset_gmm": "bayes_gmm.inference",
    "fit_gmm": "bayes_gmm.inference",
    "fit_sparse_gmm": "bayes_gmm.inference",
    "loo_subsampled": "bayes_gmm.inference",
    "membership_probabilities": "bayes_gmm.inference",
    "posterior_log_density": "bayes_gmm.inference",
    "posterior_partition": "bayes_gmm.inference",
    "select_k": "bayes_gmm.inference",
    "waic": "bayes_gmm.inference",
    "GMMPriors": "bayes_gmm.models",
    "build_model": "bayes_gmm.models",
    # data, warnings and errors
    "load_faithful": "bayes_gmm.datasets",
    "load_galaxies": "bayes_gmm.datasets",
    "open_dask": "bayes_gmm.sources",
    "ConvergenceWarning": "bayes_gmm.exceptions",
    "IllConditionedCovarianceError": "bayes_gmm.exceptions",
}

__all__ = ["__version__", *sorted(_EXPORTS)]
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
