"""``BayesianGaussianMixture``: the Bayesian fit (:func:`bayes_gmm.inference.fit_gmm`) as a scikit-learn
estimator, its predictions averaged over the posterior."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

from bayes_gmm._validation import check_positive_int, check_sample_weight
from bayes_gmm.covariance import get_structure
from bayes_gmm.estimators._base import MixtureEstimator, defaults_of, seed_of
from bayes_gmm.inference import fit_gmm, membership_probabilities, posterior_log_density
from bayes_gmm.inference._draws import fit_draws

_DEFAULTS = defaults_of(fit_gmm)


class BayesianGaussianMixture(MixtureEstimator):
    """A Bayesian Gaussian mixture (NUTS or ADVI), with scikit-learn's estimator interface.

    A thin layer over :func:`bayes_gmm.inference.fit_gmm`, whose parameters it takes under the same
    names: ``BayesianGaussianMixture(n_components=2, random_state=0).fit(X)`` runs ``fit_gmm(X, 2,
    random_seed=0)`` and keeps the result, the whole posterior, as :attr:`idata_`. Its predictions are
    averages over the posterior: :meth:`predict_proba` is the posterior mean of each membership
    probability and :meth:`score_samples` the log posterior predictive density;
    :meth:`membership_probabilities` adds their credible intervals and entropy.

    Unlike scikit-learn's ``BayesianGaussianMixture`` (variational inference with a Dirichlet process
    prior), this samples the posterior of a mixture with a fixed number of components (or fits ADVI to it):
    there is no ``weight_concentration_prior``; the priors are :class:`bayes_gmm.models.GMMPriors`.

    Parameters
    ----------
    n_components : int, default 1
        Number of mixture components K.
    covariance_type : str, default fit_gmm's ("full")
        "full", "tied", "diag", "spherical", or mclust's "VVV", "EEE", "VVI", "VII" (the same four), "EII",
        "EEI"; "E" or "V" for one feature.
    method : {"nuts", "advi", "fullrank_advi"}, default fit_gmm's ("nuts")
    backend : {"auto", "nutpie", "pymc", "numpyro", "kernel"}, default fit_gmm's ("auto")
        NUTS: nutpie, pymc or numpyro; ADVI: kernel or pymc (see :func:`bayes_gmm.inference.fit_gmm`).
    draws, tune, chains : int, default fit_gmm's
        NUTS draws kept per chain, tuning steps per chain, number of chains (ADVI: `draws` from the fitted
        approximation).
    cores : int, optional
        Worker processes for the PyMC and nutpie back ends.
    target_accept : float, default fit_gmm's
    priors : GMMPriors, optional
        Prior hyper-parameters; by default scaled to the data.
    jitter : float, default fit_gmm's
        Size of the perturbation of the EM start of each chain.
    advi_max_iter, advi_tolerance, advi_learning_rate, advi_restarts : default fit_gmm's
        ADVI's stopping rule (these play the part of scikit-learn's ``max_iter`` and ``tol``, with
        fit_gmm's meaning: a relative change of the mean loss over a window), step size and restarts.
    minibatch_size : int, optional
        ADVI only: fit on minibatches of this many rows.
    log_likelihood : bool, optional
        Store the pointwise log-likelihood in :attr:`idata_` (for WAIC and LOO); fit_gmm's default.
    random_state : None, int, numpy.random.SeedSequence, numpy.random.Generator or numpy.random.RandomState
        Seeds the fit (fit_gmm's ``random_seed``: EM, the chains' starts and the sampler) and
        :meth:`sample`. The same int gives the same fit as ``fit_gmm(..., random_seed=int)``; None a new one
        each time; a Generator or RandomState is drawn from, so it advances with each fit.
    progressbar : bool, default False

    Attributes
    ----------
    idata_ : xarray.DataTree
        The fit as :func:`~bayes_gmm.inference.fit_gmm` returns it: the posterior (relabelled to the EM
        labelling), sample statistics, pointwise log-likelihood, observed data and the convergence verdict
        in ``attrs``; every ArviZ function takes it.
    weights_ : ndarray of shape (n_components,)
        Posterior mean of the weights.
    means_ : ndarray of shape (n_components, n_features)
        Posterior mean of the means.
    covariances_ : ndarray
        Posterior mean of the covariances, in `covariance_type`'s shape (as
        :class:`~bayes_gmm.estimators.GaussianMixture`'s).
    precisions_cholesky_ : ndarray
        Cholesky factors of the inverses of `covariances_`, in the same shape.
    converged_ : bool
        The fit's convergence verdict (``idata_.attrs["converged"]``; see fit_gmm).
    n_iter_ : int
        ADVI only: the iterations of the kept run.
    lower_bound_ : float
        ADVI only: the final ELBO of the kept run.
    labels_ : ndarray of shape (n_samples,)
        The most probable component of each training sample (largest posterior mean probability).
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        The column names of a training DataFrame (only set for one with string column names).

    Notes
    -----
    New data meet the fit by column name, as :class:`~bayes_gmm.estimators.GaussianMixture`'s do.
    """

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = _DEFAULTS["covariance_type"],
        method: str = _DEFAULTS["method"],
        backend: str = _DEFAULTS["backend"],
        draws: int = _DEFAULTS["draws"],
        tune: int = _DEFAULTS["tune"],
        chains: int = _DEFAULTS["chains"],
        cores: int | None = _DEFAULTS["cores"],
        target_accept: float = _DEFAULTS["target_accept"],
        priors=_DEFAULTS["priors"],
        jitter: float = _DEFAULTS["jitter"],
        advi_max_iter: int = _DEFAULTS["advi_max_iter"],
        advi_tolerance: float = _DEFAULTS["advi_tolerance"],
        advi_learning_rate: float = _DEFAULTS["advi_learning_rate"],
        advi_restarts: int = _DEFAULTS["advi_restarts"],
        minibatch_size: int | None = _DEFAULTS["minibatch_size"],
        log_likelihood: bool | None = _DEFAULTS["log_likelihood"],
        random_state=None,
        progressbar: bool = _DEFAULTS["progressbar"],
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.method = method
        self.backend = backend
        self.draws = draws
        self.tune = tune
        self.chains = chains
        self.cores = cores
        self.target_accept = target_accept
        self.priors = priors
        self.jitter = jitter
        self.advi_max_iter = advi_max_iter
        self.advi_tolerance = advi_tolerance
        self.advi_learning_rate = advi_learning_rate
        self.advi_restarts = advi_restarts
        self.minibatch_size = minibatch_size
        self.log_likelihood = log_likelihood
        self.random_state = random_state
        self.progressbar = progressbar

    def fit(self, X, y=None, sample_weight=None) -> BayesianGaussianMixture:
        """Fit the Bayesian mixture to `X` (see :func:`~bayes_gmm.inference.fit_gmm`).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored (scikit-learn's signature).
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weight of each row (its log-likelihood is multiplied by it; see fit_gmm).

        Returns
        -------
        self
        """
        data = self._fit_data(X)
        # Checked before fit_gmm's checks of the data, which a bad weight would otherwise hide.
        sample_weight = check_sample_weight(sample_weight, data.shape[0], self.n_components)
        # Every constructor parameter but random_state is the fit_gmm option of the same name.
        options = {name: getattr(self, name) for name in _DEFAULTS.keys() & self.get_params().keys()}
        idata = fit_gmm(
            data,
            self.n_components,
            **options,
            sample_weight=sample_weight,
            random_seed=seed_of(self.random_state),
        )
        draws = fit_draws(idata, func="BayesianGaussianMixture.fit")
        weights, means, full = draws.point_estimate()
        structure = get_structure(idata.attrs["covariance_type"])
        self.idata_ = idata
        self.weights_, self.means_ = weights, means
        self.covariances_ = structure.from_full(full, weights)
        self.precisions_cholesky_ = structure.precision_cholesky(self.covariances_)
        self.converged_ = bool(idata.attrs["converged"])
        if "advi_iterations" in idata.attrs:
            self.n_iter_ = int(idata.attrs["advi_iterations"])
            self.lower_bound_ = float(idata.attrs["elbo_final"])
        else:  # a NUTS fit after an ADVI one: no iterations or bound of its own
            for name in ("n_iter_", "lower_bound_"):
                self.__dict__.pop(name, None)
        self.labels_ = membership_probabilities(idata)["most_probable"].to_numpy()
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Posterior mean of the membership probabilities ``P(z_i = k | x_i, theta)``; rows sum to one.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_components)
            The ``probability`` of :meth:`membership_probabilities`.
        """
        X = self._new_data(X)
        return membership_probabilities(self.idata_, X)["probability"].to_numpy()

    def score_samples(self, X) -> np.ndarray:
        """Log posterior predictive density ``log mean_s p(x_i | theta_s)`` of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
            As :func:`~bayes_gmm.inference.posterior_log_density` computes it.
        """
        X = self._new_data(X)
        return posterior_log_density(self.idata_, X)

    def membership_probabilities(self, X=None, *, interval_prob: float = 0.9, max_draws: int | None = None):
        """Membership probabilities with credible intervals, most probable component and entropy.

        The same numbers as ``bayes_gmm.inference.membership_probabilities(self.idata_, X, ...)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), optional
            Points to assign (a DataFrame's index labels ``obs_id``); by default the training data.
        interval_prob : float, default 0.9
            Probability mass of the equal-tailed credible interval.
        max_draws : int, optional
            Use at most this many (evenly thinned) posterior draws; all by default.

        Returns
        -------
        xarray.Dataset
            ``probability``, ``probability_lower``, ``probability_upper`` (obs_id, component),
            ``most_probable``, ``max_probability`` and ``entropy`` (obs_id); see
            :func:`~bayes_gmm.inference.membership_probabilities`.
        """
        check_is_fitted(self)
        if X is not None:
            X = self._in_fit_order(X)
            self._new_data(X)  # scikit-learn's checks of new data against the fit
        return membership_probabilities(self.idata_, X, interval_prob=interval_prob, max_draws=max_draws)

    def sample(self, n_samples: int = 1):
        """Draw samples from the posterior predictive distribution, seeded by `random_state`.

        Each sample comes from the mixture of a posterior draw chosen at random (uniformly), so the samples
        carry the posterior's uncertainty about the parameters as well as the mixture's spread.

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
        n_samples = check_positive_int(n_samples, "n_samples")
        draws = fit_draws(self.idata_, func="BayesianGaussianMixture.sample")
        rng = np.random.default_rng(seed_of(self.random_state))
        chosen = rng.integers(draws.n_draws, size=n_samples)
        cumulative = np.cumsum(draws.weights[chosen], axis=1)
        u = rng.random(n_samples) * cumulative[:, -1]
        labels = np.minimum((u[:, None] >= cumulative).sum(axis=1), draws.n_components - 1)
        chol = np.linalg.cholesky(draws.covariances[chosen, labels])
        noise = rng.standard_normal((n_samples, draws.n_features))
        return draws.means[chosen, labels] + np.einsum("nij,nj->ni", chol, noise), labels
