"""scikit-learn estimators over the package's fits: ``GaussianMixture`` (EM) and ``BayesianGaussianMixture``.

They follow scikit-learn's conventions (parameters stored by ``__init__``, ``fit`` returning the estimator,
fitted attributes ending in ``_``), so they work in pipelines, grid searches, ``clone`` and pickles.
Mapping of scikit-learn's parameter names to the functions': ``random_state`` is ``random_seed``,
``init_params`` is fit_em's ``init``, ``warm_start`` is fit_em's ``initial_params`` (the last fit); every
other parameter has the function's name and meaning. The names below are imported on first use, so the EM
estimator does not import PyMC.
"""

from bayes_gmm._lazy import lazy_exports

_EXPORTS = {
    "BayesianGaussianMixture": "._bayes",
    "GaussianMixture": "._em",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
