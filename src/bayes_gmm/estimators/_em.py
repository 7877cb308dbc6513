"""``GaussianMixture``: the EM fit (:func:`bayes_gmm.em_baseline.fit_em`) as a scikit-learn estimator."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

from bayes_gmm._validation import check_choice, columns_in_fit_order
from bayes_gmm.covariance import get_structure
from bayes_gmm.em_baseline import INIT_METHODS, EMResult, fit_em
from bayes_gmm.estimators._base import MixtureEstimator, defaults_of, seed_of

_DEFAULTS = defaults_of(fit_em)


class GaussianMixture(MixtureEstimator):
    """A Gaussian mixture fitted by maximum likelihood (EM), with scikit-learn's estimator interface.

    A thin layer over :func:`bayes_gmm.em_baseline.fit_em`: ``GaussianMixture(n_components=3,
    random_state=0).fit(X)`` runs ``fit_em(X, 3, random_seed=0)`` with the same options and gives the same
    numbers. It works where scikit-learn's ``sklearn.mixture.GaussianMixture`` does (pipelines,
    ``GridSearchCV`` scored by the held-out mean log-likelihood, ``clone``, pickling) and takes mclust's
    covariance models by name as well.

    Parameters
    ----------
    n_components : int, default 1
        Number of mixture components K.
    covariance_type : str, default fit_em's ("full")
        "full", "tied", "diag", "spherical", or any of mclust's 14 models by name ("EII" ... "VVV"; "E" or
        "V" for one feature); see :func:`~bayes_gmm.em_baseline.fit_em`.
    tol : float, default fit_em's
        Convergence threshold on the change of the mean log-likelihood per sample made by one EM update
        (scikit-learn's ``tol``, whose default is 1e-3).
    reg_covar : float, default fit_em's
        Added to the diagonal of every covariance.
    max_iter : int, default fit_em's
        Maximum number of EM updates per start.
    n_init : int, default fit_em's
        Number of starts run to convergence; the best is kept (see fit_em's Notes on how the starts differ).
    init_params : str, default fit_em's ``init``
        How the starts are made: one of :data:`bayes_gmm.em_baseline.INIT_METHODS` (fit_em's ``init``;
        scikit-learn's "k-means++" and "random_from_data" are not offered).
    warm_start : bool, default False
        If True, each `fit` after the first starts from the last fit's parameters (one start, as
        scikit-learn's ``warm_start``; fit_em's ``initial_params``).
    random_state : None, int, numpy.random.SeedSequence, numpy.random.Generator or numpy.random.RandomState
        Seeds the starts (fit_em's ``random_seed``) and :meth:`sample`. The same int gives the same fit as
        ``fit_em(..., random_seed=int)``; None a new one each time; a Generator or RandomState is drawn
        from, so it advances with each fit.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
    covariances_ : ndarray
        (K, D, D) for "full" and mclust's models, (D, D) for "tied", (K, D) for "diag", (K,) for
        "spherical".
    precisions_ : ndarray
        The inverses of the covariances, in the same shape.
    precisions_cholesky_ : ndarray
        Cholesky factors ``P`` of the precisions, ``inv(cov) = P @ P.T``, in the same shape.
    converged_ : bool
        Whether the best start converged within `max_iter`.
    n_iter_ : int
        EM updates run for the best start.
    lower_bound_ : float
        Mean log-likelihood per sample of the training data at the fit (per unit of weight for a weighted
        fit), as scikit-learn defines it for EM.
    lower_bounds_ : ndarray of shape (n_iter_,)
        The same after each update of the best start (as scikit-learn's ``lower_bounds_``).
    labels_ : ndarray of shape (n_samples,)
        The most probable component of each training sample.
    result_ : EMResult
        The fit as :func:`~bayes_gmm.em_baseline.fit_em` returns it (``icl``, ``full_covariances``, ...).
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        The column names of a training DataFrame (only set for one with string column names).

    Notes
    -----
    New data meet the fit by column name: a DataFrame with the training columns in another order is put in
    the fit's order (scikit-learn refuses it), and a missing or unknown column is an error naming it; an
    array is taken by position.

    `fit` takes the data in memory (scikit-learn's checks convert it to an array); for Dask arrays, which
    are fitted chunk by chunk, call :func:`~bayes_gmm.em_baseline.fit_em` itself.
    """

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = _DEFAULTS["covariance_type"],
        tol: float = _DEFAULTS["tol"],
        reg_covar: float = _DEFAULTS["reg_covar"],
        max_iter: int = _DEFAULTS["max_iter"],
        n_init: int = _DEFAULTS["n_init"],
        init_params: str = _DEFAULTS["init"],
        warm_start: bool = False,
        random_state=None,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.warm_start = warm_start
        self.random_state = random_state

    def fit(self, X, y=None, sample_weight=None) -> GaussianMixture:
        """Fit the mixture to `X` by EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored (scikit-learn's signature).
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weight of each sample (a weight ``g`` counts as ``g`` copies; see fit_em).

        Returns
        -------
        self
        """
        init = check_choice(self.init_params, "init_params", INIT_METHODS)
        previous = getattr(self, "result_", None) if self.warm_start else None
        if previous is not None:
            X = self._warm_start_data(X, previous)
        data = self._fit_data(X)
        result = fit_em(
            data,
            self.n_components,
            covariance_type=self.covariance_type,
            init=init,
            n_init=1 if previous is not None else self.n_init,
            max_iter=self.max_iter,
            tol=self.tol,
            reg_covar=self.reg_covar,
            initial_params=previous,
            random_seed=seed_of(self.random_state),
            sample_weight=sample_weight,
        )
        self._set_fitted(result)
        self.labels_ = result.predict(data)
        return self

    def _warm_start_data(self, X, previous: EMResult):
        """`X` with a DataFrame's columns in the last fit's order, once the last fit is known to fit `X`'s
        shape and this estimator's settings (warm_start reuses its parameters as the start)."""
        X = columns_in_fit_order(X, getattr(self, "_column_names", None))
        n_features = np.shape(X)[1] if np.ndim(X) == 2 else None
        changed = [
            f"{what} {before!r} -> {now!r}"
            for what, before, now in (
                ("n_components", previous.n_components, self.n_components),
                (
                    "covariance_type",
                    get_structure(previous.covariance_type).name,
                    get_structure(self.covariance_type).name,
                ),
                ("n_features", previous.n_features, n_features),
            )
            if before != now
        ]
        if changed:
            raise ValueError(
                "warm_start=True starts each fit from the last fit's parameters, which do not fit this one: "
                f"{', '.join(changed)}. Set warm_start=False (estimator.set_params(warm_start=False)) to fit "
                "from fresh starts."
            )
        return X

    def _set_fitted(self, result: EMResult) -> None:
        n_total = result.n_samples if result.total_weight is None else result.total_weight
        self.result_ = result
        self.weights_ = result.weights
        self.means_ = result.means
        self.covariances_ = result.covariances
        self.precisions_cholesky_ = result.precisions_cholesky
        chol = result.precisions_cholesky
        vector = result.covariance_type in ("diag", "spherical")  # stored as variances, not matrices
        self.precisions_ = chol**2 if vector else chol @ np.swapaxes(chol, -1, -2)
        self.converged_ = result.converged
        self.n_iter_ = result.n_iter
        self.lower_bound_ = result.log_likelihood / n_total
        self.lower_bounds_ = (
            result.log_likelihood_history[1:] / n_total
        )  # after each update, as scikit-learn's

    def predict_proba(self, X) -> np.ndarray:
        """Responsibilities ``P(z_i = k | x_i)`` at the fitted parameters; rows sum to one.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_components)
        """
        X = self._new_data(X)
        return self.result_.predict_proba(X)

    def score_samples(self, X) -> np.ndarray:
        """Log density ``log p(x_i)`` of the fitted mixture at each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        X = self._new_data(X)
        return self.result_.score_samples(X)

    def sample(self, n_samples: int = 1):
        """Draw samples from the fitted mixture, seeded by `random_state` (an int: the same draws each call).

        Parameters
        ----------
        n_samples : int, default 1

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        labels : ndarray of shape (n_samples,)
            The component each sample was drawn from.
        """
        check_is_fitted(self)
        return self.result_.sample(n_samples, random_seed=seed_of(self.random_state))

    def bic(self, X=None) -> float:
        """Bayesian information criterion ``-2 log L + p log n`` (lower is better; scikit-learn's sign).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), optional
            Data to evaluate; by default the training data (no need to pass it again).

        Returns
        -------
        float
        """
        check_is_fitted(self)
        return self.result_.bic(None if X is None else self._new_data(X))

    def aic(self, X=None) -> float:
        """Akaike information criterion ``-2 log L + 2 p`` (lower is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), optional
            Data to evaluate; by default the training data.

        Returns
        -------
        float
        """
        check_is_fitted(self)
        return self.result_.aic(None if X is None else self._new_data(X))
