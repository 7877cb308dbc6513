"""Choosing the covariance model and the number of components by BIC, as R's ``mclustBIC`` does."""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayes_gmm._validation import check_data, check_positive_int
from bayes_gmm.covariance import COVARIANCE_TYPES, get_structure
from bayes_gmm.covariance._structures import MCLUST_NAMES, MCLUST_NAMES_1D
from bayes_gmm.em_baseline._fit import fit_em
from bayes_gmm.em_baseline._result import EMResult
from bayes_gmm.exceptions import ConvergenceWarning, IllConditionedCovarianceError


@dataclass(frozen=True, eq=False)
class ModelSearch:
    """Every (covariance model, number of components) fitted by :func:`search_models`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per fit, indexed by ``covariance_type`` and ``n_components``: ``bic``, ``icl`` (lower is
        better; R's mclust reports ``-bic``), ``log_likelihood``, ``n_parameters``, ``converged`` and
        ``failed`` (every start collapsed: no fit, NaN criteria).
    fits : dict
        ``(covariance_type, n_components) -> EMResult`` for the fits that did not fail.
    """

    table: pd.DataFrame
    fits: dict

    def best(self, n: int = 3, criterion: str = "bic") -> pd.DataFrame:
        """The `n` rows with the lowest `criterion` ("bic" or "icl")."""
        if criterion not in ("bic", "icl"):
            raise ValueError(f"criterion must be 'bic' or 'icl'; got {criterion!r}.")
        return self.table.dropna(subset=[criterion]).nsmallest(check_positive_int(n, "n"), criterion)

    def best_fit(self, criterion: str = "bic") -> EMResult:
        """The EM fit with the lowest `criterion`."""
        return self.fits[self.best(1, criterion).index[0]]


def search_models(
    X,
    n_components=range(1, 10),
    covariance_types=None,
    *,
    n_init: int = 5,
    random_seed=None,
    **em_options,
) -> ModelSearch:
    """Fit every covariance model for every number of components by EM; tabulate BIC and ICL.

    The equivalent of R's ``mclustBIC`` (Scrucca et al. 2016): by default mclust's 14 models (EII ... VVV,
    or E and V for one feature) for K = 1..9.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    n_components : int or iterable of int, default range(1, 10)
        The numbers of components to try (an int K means 1..K).
    covariance_types : sequence of str, optional
        Names accepted by :func:`fit_em` (mclust's or scikit-learn's); default all of mclust's.
    n_init : int, default 5
        EM starts per fit (see :func:`fit_em`).
    random_seed : int, optional
        Each (model, K) gets its own stream derived from this seed, so a fit does not depend on which
        others are in the search.
    **em_options
        Further arguments of :func:`fit_em` (``init``, ``max_iter``, ``tol``, ``reg_covar``).

    Returns
    -------
    ModelSearch
        ``.table`` (one row per fit), ``.best(3)``, ``.best_fit()``.
    """
    X = check_data(X)
    if isinstance(n_components, numbers.Integral):
        n_components = range(1, check_positive_int(n_components, "n_components") + 1)
    ks = [check_positive_int(k, "n_components") for k in n_components]
    if not ks or max(ks) > X.shape[0]:
        raise ValueError(
            f"n_components must hold at least one K, each at most the number of samples ({X.shape[0]}); got "
            f"{list(ks)}. Pass e.g. n_components=range(1, {min(9, X.shape[0]) + 1})."
        )
    if covariance_types is None:
        covariance_types = MCLUST_NAMES_1D if X.shape[1] == 1 else MCLUST_NAMES
    names = list(covariance_types)
    for name in names:  # unknown names, or names for another dimension, fail here, before any fit
        get_structure(name).check_features(X.shape[1])
    root = np.random.SeedSequence(random_seed)
    rows, fits = [], {}
    for name in names:
        for k in ks:
            seed = np.random.SeedSequence(
                root.entropy, spawn_key=(COVARIANCE_TYPES.index(get_structure(name).mclust_name), k)
            )
            row = {"covariance_type": name, "n_components": k}
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    fit = fit_em(
                        X,
                        k,
                        covariance_type=name,
                        n_init=n_init,
                        random_seed=int(seed.generate_state(1)[0]),
                        **em_options,
                    )
            except IllConditionedCovarianceError:
                rows.append(row | {"failed": True})
                continue
            fits[name, k] = fit
            rows.append(
                row
                | {
                    "bic": fit.bic(),
                    "icl": fit.icl(),
                    "log_likelihood": fit.log_likelihood,
                    "n_parameters": fit.n_parameters,
                    "converged": fit.converged,
                    "failed": False,
                }
            )
    table = pd.DataFrame(rows).set_index(["covariance_type", "n_components"])
    return ModelSearch(table=table, fits=fits)
