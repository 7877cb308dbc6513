"""Settings and results of an SBC experiment: the explicit priors, the options, and the ranks recorded.

One job: describe an SBC run. :class:`SBCSettings` holds the model, sampler settings and replications
(validated on construction, with the deliberately mis-scaled fitting priors of ``prior_scale_error``);
:class:`SBCResult` holds the ranks of every quantity with per-replication sampler diagnostics;
``SBC_PRIORS`` are the explicit (not data-scaled) priors of the simulating model.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from bayes_gmm.models import GMMPriors

__all__ = ["COVARIANCE_TYPES", "PRIOR_ERROR_TARGETS", "SBC_PRIORS", "START_MODES", "SBCResult", "SBCSettings"]

#: Priors of the SBC runs: explicit values, the same for every data set (see module docstring).
#: The variances' prior mean is variance_scale / (variance_shape - 1) = 1.
SBC_PRIORS = GMMPriors(
    weights_concentration=5.0,
    means_loc=0.0,
    means_scale=3.0,
    variance_shape=3.0,
    variance_scale=2.0,
    lkj_eta=2.0,
)
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")  # the Bayesian structures SBC covers
PRIOR_ERROR_TARGETS = ("means", "sd", "both")
START_MODES = ("truth", "prior")


@dataclass(frozen=True)
class SBCSettings:
    """One SBC experiment: a model, its sampler settings and the number of replications.

    ``start="truth"`` starts every chain at the true parameters. That is legitimate in SBC: the start does
    not change the chain's stationary distribution, and given the data the truth is itself an exact
    posterior draw. But it makes SBC blind to poor mixing: a chain that never left its start, or one mode of
    a multimodal posterior, would still give uniform ranks. ``start="prior"`` starts each chain at an
    independent draw from the fitting model's prior instead, which also checks that the sampler finds the
    posterior's bulk.

    ``cores=1`` runs nutpie's chains one after another, which leaves the other core to a second SBC run
    (replications are independent, so the figures do not depend on it).
    """

    covariance_type: str = "diag"
    n_components: int = 2
    n_features: int = 2
    n_samples: int = 50
    replications: int = 200
    priors: GMMPriors = SBC_PRIORS
    #: The fitting model's prior scale (``prior_error_on``: the means' sd and/or the standard deviations'
    #: scale, for which the variances' scale is multiplied by its square) is the simulating one times this.
    prior_scale_error: float = 1.0
    prior_error_on: str = "both"
    chains: int = 4
    draws: int = 500
    tune: int = 500
    cores: int = 1
    target_accept: float = 0.9
    #: L, the number of thinned posterior draws each truth is ranked among; ranks lie in {0, ..., L}.
    n_ranks: int = 99
    start: str = "truth"
    seed: int = 0
    #: Refits, each with 4x the draws, of a replication whose smallest bulk ESS is below L.
    low_ess_refits: int = 1

    def __post_init__(self):
        if self.covariance_type not in COVARIANCE_TYPES:
            raise ValueError(
                f"covariance_type must be one of {COVARIANCE_TYPES}; got {self.covariance_type!r}."
            )
        if self.prior_error_on not in PRIOR_ERROR_TARGETS:
            raise ValueError(
                f"prior_error_on must be one of {PRIOR_ERROR_TARGETS}; got {self.prior_error_on!r}."
            )
        if self.start not in START_MODES:
            raise ValueError(f"start must be one of {START_MODES}; got {self.start!r}.")
        if not self.prior_scale_error > 0:
            raise ValueError(f"prior_scale_error must be > 0; got {self.prior_scale_error!r}.")
        if self.n_ranks > self.chains * self.draws:
            raise ValueError(
                f"n_ranks (L = {self.n_ranks}) must not exceed the posterior draws ({self.chains * self.draws})."
            )

    def fitting_priors(self) -> GMMPriors:
        """The priors of the model that is fitted: ``priors`` with the deliberate scale error applied."""
        factor = self.prior_scale_error
        changes = {}
        if self.prior_error_on in ("means", "both"):
            changes["means_scale"] = np.asarray(self.priors.means_scale, dtype=float) * factor
        if self.prior_error_on in ("sd", "both"):
            changes["variance_scale"] = np.asarray(self.priors.variance_scale, dtype=float) * factor**2
        return replace(self.priors, **changes)


@dataclass
class SBCResult:
    """Ranks of every quantity in every replication, with per-replication sampler diagnostics."""

    settings: SBCSettings
    quantities: list[str]
    #: (replications, quantities) ranks in {0, ..., L}
    ranks: np.ndarray
    #: smallest bulk ESS over the quantities, per replication (all chains x draws, before thinning)
    min_ess: np.ndarray
    #: largest rank-normalised R-hat over the quantities, per replication
    max_rhat: np.ndarray
    #: divergent transitions per replication
    divergences: np.ndarray
    seconds: float
    #: replications refitted with more draws because the smallest bulk ESS was below L
    refits: int = 0
