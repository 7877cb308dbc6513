"""Choosing the covariance model and the number of components by BIC, as R's ``mclustBIC`` does."""

from __future__ import annotations

import dataclasses
import numbers
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayes_gmm._validation import (
    check_data,
    check_positive_int,
    check_sample_weight,
    child_seed,
    feature_names_of,
    seed_sequence,
)
from bayes_gmm.covariance import COVARIANCE_TYPES, get_structure
from bayes_gmm.covariance._structures import MCLUST_NAMES, MCLUST_NAMES_1D
from bayes_gmm.em_baseline._fit import _rank, fit_em
from bayes_gmm.em_baseline._result import EMResult
from bayes_gmm.exceptions import ConvergenceWarning, IllConditionedCovarianceError

#: Each model also starts from the partitions of this many best fits (by BIC) of the other models.
SHARED_LEADERS = 1
#: The restarts of each fit stop when the mean log-likelihood per sample changes by less than this.
SCOUTING_TOL = 1e-4
#: On data with more rows, the restarts of each fit run on a random subset of this many rows, and EM on all
#: the data continues from the best of them (the starts only need to find the right basin).
RESTART_POINTS = 1000


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
    n_init: int = 2,
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
    covariance_types : str or sequence of str, optional
        Names accepted by :func:`fit_em` (mclust's or scikit-learn's), or one name; default all of
        mclust's.
    n_init : int, default 2
        EM starts per fit (see :func:`fit_em`); on data with more than 1,000 rows they run on a random
        subset of 1,000 rows (of positive weight) and EM on all the data continues from the best. Then every
        model also starts from the partition of the best other model (by BIC) at the same K, and keeps the
        better fit:
        a partition one model finds is often near an optimum of another. (mclust starts each model once,
        from its model-based hierarchical clustering: fit_em's first start.)
    random_seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Each (model, K) gets its own stream derived from this seed; the same seed gives the same table
        (the accepted kinds: see :func:`bayes_gmm._validation.seed_sequence`).
    **em_options
        Further arguments of :func:`fit_em` (``max_iter``, ``tol``, ``reg_covar``, ``sample_weight``).

    Returns
    -------
    ModelSearch
        ``.table`` (one row per fit), ``.best(3)``, ``.best_fit()``. Fits of a DataFrame keep its column
        names (:attr:`EMResult.feature_names`).
    """
    feature_names = feature_names_of(X)
    X = check_data(X)
    ks = _k_values(n_components)
    if not ks or max(ks) > X.shape[0]:
        raise ValueError(
            f"n_components must hold at least one K, each at most the number of samples ({X.shape[0]}); got "
            f"{list(ks)}. Pass e.g. n_components=range(1, {min(9, X.shape[0]) + 1})."
        )
    if covariance_types is None:
        covariance_types = MCLUST_NAMES_1D if X.shape[1] == 1 else MCLUST_NAMES
    names = [covariance_types] if isinstance(covariance_types, str) else list(covariance_types)
    for name in names:  # unknown names, or names for another dimension, fail here, before any fit
        get_structure(name).check_features(X.shape[1])
    if "initial_params" in em_options or "initial_resp" in em_options:
        raise ValueError(
            "search_models starts every fit itself; remove initial_params and initial_resp from the options, "
            "or call fit_em for one model."
        )
    n_init = check_positive_int(n_init, "n_init")
    weights = check_sample_weight(em_options.pop("sample_weight", None), X.shape[0], max(ks))
    root = seed_sequence(random_seed)
    subset = _restart_subset(X, weights, np.random.default_rng(child_seed(root, 0)))
    rows, fits = [], {}
    for k in ks:
        # Restarts and the exchange of partitions only choose the basin: they run on the subset of a large
        # data set and stop at a looser tolerance; EM continues from each model's best on all the data.
        rows_used = slice(None) if subset is None or k > len(subset) // 2 else subset
        data = X[rows_used]
        scouting = em_options | {"tol": max(SCOUTING_TOL, em_options.get("tol", 0.0))}
        scouting["sample_weight"] = None if weights is None else weights[rows_used]
        found = {}
        for name in names:  # each (model, K) has its own stream of restarts
            seed = int(child_seed(root, 1, _model_key(name), k).generate_state(1)[0])
            found[name] = _quiet_fit(data, k, name, n_init=n_init, random_seed=seed, **scouting)
        # Every model also starts from the partitions of the best other models at this K; a partition one
        # model finds is often near an optimum of another that its own restarts miss.
        leaders = sorted((fit for fit in found.values() if fit is not None), key=lambda fit: fit.bic())
        leader_starts = [(fit, fit.predict_proba(data)) for fit in leaders[:SHARED_LEADERS]]
        for name in names:
            tries = [
                _quiet_fit(data, k, name, initial_resp=resp, n_init=1, **scouting)
                for fit, resp in leader_starts
                if fit is not found[name]
            ]
            found[name] = _best([*tries, found[name]], em_options.get("reg_covar", 1e-6))
        continuation = {key: value for key, value in em_options.items() if key != "init"}
        continuation["sample_weight"] = weights
        found = {
            name: fit and _quiet_fit(X, k, name, initial_params=fit, n_init=1, **continuation)
            for name, fit in found.items()
        }
        for name, fit in found.items():
            row = {"covariance_type": name, "n_components": k}
            if fit is None:
                rows.append(row | {"failed": True})
                continue
            fits[name, k] = fit = dataclasses.replace(fit, feature_names=feature_names)
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


def _k_values(n_components) -> list[int]:
    """`n_components` (an int K, meaning 1..K, or an iterable of ints) as a list of ints >= 1."""
    if isinstance(n_components, numbers.Integral) and not isinstance(n_components, bool):
        return list(range(1, check_positive_int(n_components, "n_components") + 1))
    if isinstance(n_components, (str, bytes, numbers.Number)) or not hasattr(n_components, "__iter__"):
        raise TypeError(
            f"n_components must be an int K (the fits K = 1..K) or an iterable of ints; got "
            f"{n_components!r:.60} of type {type(n_components).__name__}. Pass e.g. n_components=3 or "
            f"n_components=[1, 2, 3]."
        )
    return [check_positive_int(k, "n_components") for k in n_components]


def _model_key(name: str) -> int:
    """A number for the model, the same for a name and its alias (VVV and full)."""
    return COVARIANCE_TYPES.index(get_structure(name).mclust_name)


def _restart_subset(X, weights, rng: np.random.Generator) -> np.ndarray | None:
    """Rows on which the restarts run when the data are large (None: all of them): a random subset of
    the rows with a positive weight (a row of weight 0 says nothing about where the components are)."""
    rows = np.arange(len(X)) if weights is None else np.flatnonzero(weights > 0)
    if len(rows) <= RESTART_POINTS:
        return None if len(rows) == len(X) else rows
    return np.sort(rng.choice(rows, RESTART_POINTS, replace=False))


def _best(fits: list, reg_covar: float) -> EMResult | None:
    """The best of `fits` (collapsed fits last, then by log-likelihood); None if there is none."""
    return max((fit for fit in fits if fit is not None), key=lambda fit: _rank(fit, reg_covar), default=None)


def _quiet_fit(X, k: int, name: str, **options) -> EMResult | None:
    """:func:`fit_em` without convergence warnings; None if every start collapses."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return fit_em(X, k, covariance_type=name, **options)
    except IllConditionedCovarianceError:
        return None
