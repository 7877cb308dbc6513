"""What both estimators share: scikit-learn's data handling, seeds and the methods built on predict_proba."""

from __future__ import annotations

import inspect
import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin, DensityMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from bayes_gmm._validation import (
    RANDOM_SEED_TYPES,
    CheckedData,
    check_data,
    columns_in_fit_order,
    default_feature_names,
    feature_names_of,
    seed_sequence,
)

#: The kinds of ``random_state`` the estimators accept, for docstrings and messages.
RANDOM_STATE_TYPES = f"{RANDOM_SEED_TYPES.replace(' or ', ', ')} or a numpy.random.RandomState"


def defaults_of(function) -> dict:
    """The default value of each keyword parameter of `function` (so an estimator's defaults are its)."""
    return {
        name: parameter.default
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }


def seed_of(random_state) -> np.random.SeedSequence:
    """`random_state` as the seed that ``fit_em`` and ``fit_gmm`` read.

    An int, None, a SeedSequence or a Generator is read as every ``random_seed`` of the package is
    (:func:`bayes_gmm._validation.seed_sequence`: the same int gives the same fit as the function given that
    int); a legacy ``numpy.random.RandomState`` gives one integer drawn from it (so it advances, as in
    scikit-learn).
    """
    if isinstance(random_state, np.random.RandomState):
        return np.random.SeedSequence(int(random_state.randint(2**63, dtype=np.int64)))
    if random_state is not None and not isinstance(
        random_state, numbers.Integral | np.random.SeedSequence | np.random.Generator
    ):
        raise TypeError(
            f"random_state must be {RANDOM_STATE_TYPES}; got {random_state!r:.60} of type "
            f"{type(random_state).__name__}. Pass e.g. random_state=0."
        )
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool) and random_state < 0:
        raise ValueError(
            f"random_state must be {RANDOM_STATE_TYPES}; got {random_state}. Pass e.g. random_state=0."
        )
    return seed_sequence(random_state, name="random_state")


class MixtureEstimator(ClusterMixin, DensityMixin, BaseEstimator):
    """Base of the mixture estimators: the fit's data, new data, and predict, score and fit_predict.

    A subclass sets the fitted attributes in ``fit`` and defines ``predict_proba`` and ``score_samples``.
    """

    def _fit_data(self, X) -> CheckedData:
        """`X` checked as scikit-learn checks it (setting ``n_features_in_``, ``feature_names_in_``), then as
        bayes-gmm does, with its column names."""
        # Every DataFrame's column names, as strings: scikit-learn sets feature_names_in_ only for string
        # names, and new data meet the fit by name whatever the names are (as fit_em's results do).
        column_names = feature_names_of(X)
        values = check_data(validate_data(self, X, dtype=np.float64, ensure_min_samples=2))
        self._column_names = column_names
        names = default_feature_names(values.shape[1]) if column_names is None else column_names
        return CheckedData(values, names)

    def _in_fit_order(self, X):
        """New data `X`, a DataFrame's columns put in the fit's order by name (see Notes of the class)."""
        check_is_fitted(self)
        return columns_in_fit_order(X, getattr(self, "_column_names", None))

    def _new_data(self, X) -> np.ndarray:
        """New data `X` as an array, its columns in the fit's order, checked against the fit."""
        return validate_data(self, self._in_fit_order(X), dtype=np.float64, reset=False)

    def predict(self, X) -> np.ndarray:
        """The most probable component of each sample (the largest of :meth:`predict_proba`).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        return np.argmax(self.predict_proba(X), axis=1)

    def score(self, X, y=None) -> float:
        """The mean of :meth:`score_samples` over the samples of `X` (higher is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored (scikit-learn's signature).

        Returns
        -------
        float
        """
        return float(np.mean(self.score_samples(X)))
