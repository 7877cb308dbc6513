"""The fitted EM mixture: parameters, fit diagnostics, and what can be computed from them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bayes_gmm._validation import check_positive_int, data_in_fit_order, random_generator
from bayes_gmm.covariance import get_structure, log_responsibilities


def n_free_parameters(covariance_type: str, n_components: int, n_features: int) -> int:
    """Number of free parameters of a Gaussian mixture (K components, D features).

    ``(K - 1)`` weights + ``K * D`` means + the covariance structure's parameters
    (:meth:`bayes_gmm.covariance.CovarianceStructure.n_parameters`), as R's mclust counts them.
    """
    k, d = n_components, n_features
    return (k - 1) + k * d + get_structure(covariance_type).n_parameters(k, d)


def _readonly(array) -> np.ndarray:
    array = np.array(array, dtype=np.float64)
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class EMResult:
    """A Gaussian mixture fitted by expectation-maximisation (see :func:`bayes_gmm.em_baseline.fit_em`).

    Parameter shapes follow scikit-learn (K components, D features).

    Attributes
    ----------
    covariance_type : {"full", "tied", "diag", "spherical"}
    weights : ndarray of shape (K,)
    means : ndarray of shape (K, D)
    covariances : ndarray
        (K, D, D) for "full", (D, D) for "tied", (K, D) for "diag", (K,) for "spherical".
    precisions_cholesky : ndarray
        Cholesky factors ``P`` of the precisions, ``inv(cov) = P @ P.T``, same shape as `covariances`.
    log_likelihood : float
        Total log-likelihood of the training data at the returned parameters.
    log_likelihood_history : ndarray of shape (n_iter + 1,)
        Entry ``t`` is the total log-likelihood after ``t`` EM updates of the winning start (entry 0: the
        starting parameters); the last entry equals `log_likelihood`.
    n_iter : int
        EM updates run for the winning start.
    converged : bool
        Whether the change in mean log-likelihood per sample made by some update, the last one
        included, fell below `tol` within `max_iter` updates.
    n_samples : int
        Number of training samples (rows); the information criteria use it when called without data
        (a weighted fit uses `total_weight` instead).
    train_log_resp_max : ndarray of shape (n_samples,) or None
        ``log max_k P(z_i = k | x_i)`` on the training data. None for a fit of Dask data, which keeps no
        per-sample array (ICL needs only `train_log_resp_max_sum`).
    train_log_resp_max_sum : float
        ``sum_i g_i log max_k P(z_i = k | x_i)`` over the training data (``g_i`` the sample weights, 1
        without them): ICL's classification term. Computed from `train_log_resp_max` when not given.
    total_weight : float or None
        Sum of the sample weights of a weighted fit (see ``fit_em(..., sample_weight=...)``); None for an
        unweighted one. A weighted sample (a coreset, say) stands for this many points, so BIC and ICL
        without data use it as the number of samples.
    feature_names : tuple of str or None
        The column names of the training data (a DataFrame's), or None for data without names (an array).
        A DataFrame given to :meth:`predict`, :meth:`predict_proba`, :meth:`score_samples`, :meth:`score`
        and the information criteria is matched to them by column name (see Notes); arrays are taken by
        position.

    Notes
    -----
    A fit meets new data by column name where both have names: the columns of a DataFrame may come in
    any order (they are put in the fit's order), and a missing or unknown column is an error that names
    it. An array, or any data for a fit without `feature_names`, must have the columns in the training
    order.
    """

    covariance_type: str
    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray
    log_likelihood: float
    log_likelihood_history: np.ndarray
    n_iter: int
    converged: bool
    n_samples: int
    train_log_resp_max: np.ndarray | None = field(default=None, repr=False)
    train_log_resp_max_sum: float | None = field(default=None, repr=False)
    total_weight: float | None = None
    feature_names: tuple[str, ...] | None = None

    def __post_init__(self):
        for name in ("weights", "means", "covariances", "precisions_cholesky", "log_likelihood_history"):
            object.__setattr__(self, name, _readonly(getattr(self, name)))
        if self.train_log_resp_max is not None:
            object.__setattr__(self, "train_log_resp_max", _readonly(self.train_log_resp_max))
            if self.train_log_resp_max_sum is None:
                object.__setattr__(self, "train_log_resp_max_sum", float(np.sum(self.train_log_resp_max)))
        if self.train_log_resp_max_sum is None:
            raise ValueError(
                "EMResult needs train_log_resp_max (per sample) or train_log_resp_max_sum (their sum) for "
                "ICL; got neither. Pass train_log_resp_max_sum=0.0 if ICL is not needed."
            )
        object.__setattr__(self, "train_log_resp_max_sum", float(self.train_log_resp_max_sum))
        if self.total_weight is not None:
            object.__setattr__(self, "total_weight", float(self.total_weight))
        if self.feature_names is not None:
            names = tuple(str(name) for name in self.feature_names)
            if len(names) != self.n_features:
                raise ValueError(
                    f"feature_names must name the {self.n_features} features of the means; got {len(names)} "
                    f"name(s) {list(names)}. Pass one name per feature, or None."
                )
            object.__setattr__(self, "feature_names", names)

    # -- shape ---------------------------------------------------------------------------------------
    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    @property
    def n_features(self) -> int:
        return self.means.shape[1]

    @property
    def n_parameters(self) -> int:
        """Number of free parameters (see :func:`n_free_parameters`)."""
        return n_free_parameters(self.covariance_type, self.n_components, self.n_features)

    def full_covariances(self) -> np.ndarray:
        """The covariances as full matrices, shape (n_components, n_features, n_features), whatever the type."""
        return get_structure(self.covariance_type).to_full(
            self.covariances, self.n_components, self.n_features
        )

    # -- prediction ----------------------------------------------------------------------------------
    def _log_resp(self, X):
        X = data_in_fit_order(X, self.feature_names, self.n_features)
        return log_responsibilities(
            X, self.weights, self.means, self.precisions_cholesky, self.covariance_type
        )

    def score_samples(self, X) -> np.ndarray:
        """Log mixture density ``log p(x_i)`` of each sample, shape (n_samples,).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A DataFrame is matched to :attr:`feature_names` by column name, an array by position.
        """
        return self._log_resp(X)[0]

    def score(self, X) -> float:
        """Mean log-likelihood per sample (scikit-learn's ``score``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A DataFrame is matched to :attr:`feature_names` by column name, an array by position.
        """
        return float(np.mean(self.score_samples(X)))

    def predict_proba(self, X) -> np.ndarray:
        """Responsibilities ``P(z_i = k | x_i)``, shape (n_samples, n_components); rows sum to one.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A DataFrame is matched to :attr:`feature_names` by column name, an array by position.
        """
        return np.exp(self._log_resp(X)[1])

    def predict(self, X) -> np.ndarray:
        """Most probable component of each sample, shape (n_samples,).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A DataFrame is matched to :attr:`feature_names` by column name, an array by position.
        """
        return np.argmax(self._log_resp(X)[1], axis=1)

    def sample(self, n_samples: int = 1, *, random_seed=None):
        """Draw samples from the fitted mixture.

        Parameters
        ----------
        n_samples : int, default 1
        random_seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
            The same seed gives the same samples; a Generator is drawn from directly (see
            :func:`bayes_gmm._validation.seed_sequence`).

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        labels : ndarray of shape (n_samples,)
            The component each sample was drawn from.
        """
        n_samples = check_positive_int(n_samples, "n_samples")
        rng = random_generator(random_seed)
        labels = rng.choice(self.n_components, size=n_samples, p=self.weights / self.weights.sum())
        noise = rng.standard_normal((n_samples, self.n_features))
        chol = np.linalg.cholesky(self.full_covariances())
        return self.means[labels] + np.einsum("nij,nj->ni", chol[labels], noise), labels

    # -- information criteria (lower is better, scikit-learn's sign) ---------------------------------
    def _loglik_and_n(self, X):
        if X is None:
            n = self.n_samples if self.total_weight is None else self.total_weight
            return self.log_likelihood, n
        scores = self.score_samples(X)
        return float(np.sum(scores)), scores.shape[0]

    def bic(self, X=None) -> float:
        """Bayesian information criterion ``-2 log L + p log n`` (lower is better).

        This is scikit-learn's sign; R's mclust reports ``2 log L - p log n``, the negative. Without `X`,
        the training data's log-likelihood and size are used; for a weighted fit the size is the total
        weight (`total_weight`), the number of points the weighted sample stands for.
        """
        loglik, n = self._loglik_and_n(X)
        return -2.0 * loglik + self.n_parameters * np.log(n)

    def aic(self, X=None) -> float:
        """Akaike information criterion ``-2 log L + 2 p`` (lower is better)."""
        loglik, _ = self._loglik_and_n(X)
        return -2.0 * loglik + 2.0 * self.n_parameters

    def icl(self, X=None) -> float:
        """Integrated completed likelihood, ``BIC - 2 sum_i log max_k P(z_i = k | x_i)`` (lower is better).

        BIC penalised by the classification uncertainty of the hard (MAP) assignment, as in mclust's
        ``icl`` (Biernacki, Celeux & Govaert 2000), with scikit-learn's sign. Without `X`, the training
        data's term (weighted by the sample weights of a weighted fit) is used.
        """
        if X is None:
            return self.bic() - 2.0 * self.train_log_resp_max_sum
        log_resp_max = np.max(self._log_resp(X)[1], axis=1)
        return self.bic(X) - 2.0 * float(np.sum(log_resp_max))
