"""Simulation-based calibration (SBC) of the Bayesian GMM with nutpie (issue 12).

SBC (Talts et al. 2018, "Validating Bayesian inference algorithms with simulation-based calibration")
checks a model and its sampler together. Repeat R times: draw parameters theta from the prior, data y from
the model given theta, fit the model to y, and record the rank of f(theta) among L roughly independent
posterior draws of f. If the sampler draws from the exact posterior of the model that simulated the data,
every such rank is uniform on {0, ..., L}, for any function f (Modrák et al. 2023 show that f may depend on
the data too, as the log-likelihood below does).

The quantities f are functions of the parameters that do not depend on the components' labels, so that label
switching (within or between chains; the posterior is label-symmetric) cannot distort them:

- ``weight[j]``: the weights sorted ascending, all but the largest (which is one minus their sum);
- ``mean[k,x_d]``: the means with the components ordered by their first coordinate (the same rule in the
  truth and in every draw), so ``mean[0,x0]`` is the smallest first coordinate of any mean;
- ``logdet[j]``: log-determinants of the covariances sorted ascending (``tied``: the one shared covariance);
- ``corr[k,x_i,x_j]`` (full, tied): correlations, components ordered by their means as above;
- ``loglik``: the log-likelihood of the simulated data, a label-invariant scalar that depends on every
  parameter at once.

The truth and the data come from PyMC's own prior sampling (``pm.sample_prior_predictive`` of the model
built by :func:`bayes_gmm.models.build_model`), so the check does not rest on a reading of the model.
Priors are explicit (not data-scaled): ``SBC_PRIORS``. ``prior_scale_error`` makes the fitting model's prior
scale on the means and/or the standard deviations differ from the simulating one by a factor, a wrong model
that SBC should detect.

Uniformity is tested per quantity by a chi-square test of the binned ranks and by the simultaneous ECDF
test of Säilynoja, Bürkner & Vehtari (2022, "Graphical test for discrete uniformity and its applications
in goodness-of-fit evaluation and multiple sample comparison"), whose p-value is a Monte Carlo estimate.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy import stats

from bayes_gmm.models import OBSERVED, GMMPriors, build_model

__all__ = [
    "SBC_PRIORS",
    "SBCResult",
    "SBCSettings",
    "chi_square_uniformity",
    "default_bins",
    "ecdf_uniformity",
    "plot_ecdf_differences",
    "plot_rank_histograms",
    "run_sbc",
    "sbc_quantities",
    "uniformity_table",
]

#: Priors of the SBC runs: explicit values, the same for every data set (see module docstring).
SBC_PRIORS = GMMPriors(weights_concentration=5.0, means_loc=0.0, means_scale=3.0, sd_scale=1.0, lkj_eta=2.0)
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
    #: The fitting model's prior scale (``prior_error_on``) is the simulating one times this factor.
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
            changes["sd_scale"] = np.asarray(self.priors.sd_scale, dtype=float) * factor
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


def _log_likelihood(X: np.ndarray, weights: np.ndarray, means: np.ndarray, covariances: np.ndarray):
    """Mixture log-likelihood of the data X (N, D) under a batch of parameters (..., K), (..., K, D), (..., K, D, D)."""
    chol = np.linalg.cholesky(covariances)  # (..., K, D, D)
    resid = X[..., None, :, :] - means[..., :, None, :]  # (..., K, N, D)
    z = np.linalg.solve(chol, np.swapaxes(resid, -1, -2))  # (..., K, D, N): L^-1 (x - mu)
    log_det = np.sum(np.log(np.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)  # (..., K)
    d = X.shape[-1]
    log_dens = -0.5 * np.sum(z**2, axis=-2) - log_det[..., None] - 0.5 * d * np.log(2 * np.pi)  # (..., K, N)
    with np.errstate(divide="ignore"):
        log_w = np.log(weights)
    return np.sum(np.logaddexp.reduce(log_w[..., None] + log_dens, axis=-2), axis=-1)


def sbc_quantities(
    weights: np.ndarray, means: np.ndarray, covariances: np.ndarray, X: np.ndarray, covariance_type: str
) -> dict[str, np.ndarray]:
    """The label-invariant test quantities (see module docstring) of a batch of parameter values.

    Parameters have shapes (..., K), (..., K, D) and (..., K, D, D); every quantity has shape (...).
    """
    weights, means, covariances = (np.asarray(a, dtype=float) for a in (weights, means, covariances))
    k, d = means.shape[-2:]
    out = {}
    sorted_weights = np.sort(weights, axis=-1)
    for j in range(k - 1):
        out[f"weight[{j}]"] = sorted_weights[..., j]
    order = np.argsort(means[..., 0], axis=-1, kind="stable")  # components by their first mean coordinate
    ordered_means = np.take_along_axis(means, order[..., None], axis=-2)
    for c in range(k):
        for f in range(d):
            out[f"mean[{c},x{f}]"] = ordered_means[..., c, f]
    log_det = np.linalg.slogdet(covariances)[1]
    if covariance_type == "tied":
        out["logdet"] = log_det[..., 0]
    else:
        sorted_log_det = np.sort(log_det, axis=-1)
        for j in range(k):
            out[f"logdet[{j}]"] = sorted_log_det[..., j]
    if covariance_type in ("full", "tied"):
        sd = np.sqrt(np.diagonal(covariances, axis1=-2, axis2=-1))
        corr = covariances / (sd[..., :, None] * sd[..., None, :])
        ordered_corr = np.take_along_axis(corr, order[..., None, None], axis=-3)
        rows, cols = np.tril_indices(d, -1)
        for c in range(1 if covariance_type == "tied" else k):
            for i, j in zip(cols, rows, strict=True):
                name = f"corr[x{i},x{j}]" if covariance_type == "tied" else f"corr[{c},x{i},x{j}]"
                out[name] = ordered_corr[..., c, i, j]
    out["loglik"] = _log_likelihood(X, weights, means, covariances)
    return out


def _free_values(dataset, index: int, names) -> dict[str, np.ndarray]:
    return {name: dataset[name].isel(chain=0, draw=index).to_numpy() for name in names}


def _rank(truth: float, draws: np.ndarray, rng: np.random.Generator) -> int:
    """Number of draws below the truth, ties (a tied covariance's repeated values) broken at random."""
    below = int(np.sum(draws < truth))
    ties = int(np.sum(draws == truth))
    return below + (int(rng.integers(ties + 1)) if ties else 0)


def run_sbc(settings: SBCSettings, progress: Callable[[int, float], None] | None = None) -> SBCResult:
    """Run the SBC experiment ``settings``; ``progress(done, seconds)`` is called after each replication."""
    import pymc as pm

    s = settings
    started = time.perf_counter()
    template = np.zeros((s.n_samples, s.n_features))
    simulator = build_model(template, s.n_components, covariance_type=s.covariance_type, priors=s.priors)
    fit_priors = s.fitting_priors()
    free_names = [rv.name for rv in simulator.free_RVs]
    type_index = COVARIANCE_TYPES.index(s.covariance_type)
    seeds = np.random.SeedSequence([s.seed, type_index, s.n_components, s.n_features, s.n_samples])
    prior_seed, start_seed, tie_seed, *fit_seeds = seeds.spawn(3 + s.replications)
    pymc_logger = logging.getLogger("pymc")
    level = pymc_logger.level
    pymc_logger.setLevel(logging.WARNING)  # "Sampling: [...]" from sample_prior_predictive
    pool = None  # prior draws to start the chains from (start="prior")
    try:
        with warnings.catch_warnings():
            # The custom random generators run in Python (object mode) under PyMC's numba forward sampler.
            warnings.filterwarnings("ignore", message="Numba will use object mode", category=UserWarning)
            prior = pm.sample_prior_predictive(
                s.replications, model=simulator, random_seed=np.random.default_rng(prior_seed)
            )
            if s.start == "prior":
                start_model = build_model(
                    template, s.n_components, covariance_type=s.covariance_type, priors=fit_priors
                )
                pool = pm.sample_prior_predictive(
                    s.replications * s.chains,
                    model=start_model,
                    var_names=free_names,
                    random_seed=np.random.default_rng(start_seed),
                ).prior
    finally:
        pymc_logger.setLevel(level)
    simulated_data = prior.prior_predictive[OBSERVED].isel(chain=0).to_numpy()  # (R, N, D)
    truths = prior.prior
    tie_rng = np.random.default_rng(tie_seed)

    names = None
    ranks, min_ess, max_rhat, divergences, refits = [], [], [], [], 0
    for r in range(s.replications):
        X = simulated_data[r]
        truth = _free_values(truths, r, free_names)
        true_values = sbc_quantities(
            truth["weights"],
            truth["means"],
            truths["covariances"].isel(chain=0, draw=r).to_numpy(),
            X,
            s.covariance_type,
        )
        model = build_model(X, s.n_components, covariance_type=s.covariance_type, priors=fit_priors)
        fit_seed = int(fit_seeds[r].generate_state(1)[0])
        draws = s.draws
        for attempt in range(1 + s.low_ess_refits):
            stacked, ess, rhat, n_divergent = _fit_quantities(
                model, truth, pool, free_names, X, s, draws, fit_seed
            )
            if ess >= s.n_ranks or attempt == s.low_ess_refits:
                break
            # Talts et al.'s advice when the thinned draws would not be independent: draw more, thin more.
            refits += 1
            draws *= 4
            fit_seed += 1
        names = list(true_values)
        min_ess.append(ess)
        max_rhat.append(rhat)
        divergences.append(n_divergent)
        thin = np.round(np.linspace(0, stacked.shape[0] * stacked.shape[1] - 1, s.n_ranks)).astype(int)
        thinned = stacked.reshape(-1, len(names))[thin]
        ranks.append([_rank(true_values[name], thinned[:, q], tie_rng) for q, name in enumerate(names)])
        if progress is not None:
            progress(r + 1, time.perf_counter() - started)
    return SBCResult(
        settings=s,
        quantities=names,
        ranks=np.asarray(ranks, dtype=int),
        min_ess=np.asarray(min_ess),
        max_rhat=np.asarray(max_rhat),
        divergences=np.asarray(divergences),
        seconds=time.perf_counter() - started,
        refits=refits,
    )


def _fit_quantities(model, truth, pool, free_names, X, s: SBCSettings, draws: int, seed: int):
    """Fit `model` by nutpie; returns the quantities' draws (chains, draws, Q), their smallest bulk ESS,
    largest R-hat and the number of divergences."""
    from arviz_stats.base import array_stats

    from bayes_gmm.inference._nuts import run_nuts

    if pool is None:

        def start_sampler(rng):
            return truth
    else:

        def start_sampler(rng):
            return _free_values(pool, int(rng.integers(pool.sizes["draw"])), free_names)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fit = run_nuts(
            model,
            start_sampler,
            backend="nutpie",
            draws=draws,
            tune=s.tune,
            chains=s.chains,
            cores=s.cores,
            target_accept=s.target_accept,
            random_seed=seed,
            progressbar=False,
        )
    posterior = fit.posterior
    quantities = sbc_quantities(
        posterior["weights"].to_numpy(),
        posterior["means"].to_numpy(),
        posterior["covariances"].to_numpy(),
        X,
        s.covariance_type,
    )
    stacked = np.stack(list(quantities.values()), axis=-1)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        ess = float(np.nanmin(array_stats.ess(stacked, chain_axis=0, draw_axis=1, method="bulk")))
        rhat = float(np.nanmax(array_stats.rhat(stacked, chain_axis=0, draw_axis=1)))
    return stacked, ess, rhat, int(fit.sample_stats["diverging"].sum())


def default_bins(replications: int, n_ranks: int, max_bins: int = 20, min_expected: int = 8) -> int:
    """Bins of the rank histogram: the most, up to `max_bins`, that divide the L + 1 ranks evenly and
    expect at least `min_expected` replications each (L = 99: 20 bins for R >= 160, 10 for R >= 80)."""
    candidates = [
        b for b in range(1, max_bins + 1) if (n_ranks + 1) % b == 0 and replications / b >= min_expected
    ]
    return max(candidates, default=1)


def chi_square_uniformity(ranks: np.ndarray, n_ranks: int, bins: int) -> tuple[float, int, float]:
    """Pearson's chi-square test of uniform ranks in `bins` equal bins: (statistic, degrees of freedom, p)."""
    if (n_ranks + 1) % bins:
        raise ValueError(f"bins ({bins}) must divide the number of possible ranks L + 1 = {n_ranks + 1}.")
    counts = np.bincount(np.asarray(ranks) * bins // (n_ranks + 1), minlength=bins)
    statistic, p_value = stats.chisquare(counts)
    return float(statistic), bins - 1, float(p_value)


class _EcdfNull:
    """Null distribution of the simultaneous ECDF test statistic for R ranks uniform on {0, ..., L}.

    The statistic is the smallest two-sided binomial tail probability of the ECDF over the L inner points
    z_j = j / (L + 1): under uniformity, the number of ranks below j is Binomial(R, z_j) (Säilynoja et al.
    2022). Its null distribution is simulated once per (R, L).
    """

    _cache: dict = {}  # noqa: RUF012 (shared cache, not a per-instance default)

    def __init__(self, replications: int, n_ranks: int, n_simulations: int, seed: int = 20180301):
        self.replications, self.n_ranks = replications, n_ranks
        self.z = np.arange(1, n_ranks + 1) / (n_ranks + 1)
        c = np.arange(replications + 1)
        self.cdf = stats.binom.cdf(c[None, :], replications, self.z[:, None])  # (L, R + 1)
        self.sf_minus = stats.binom.sf(c[None, :] - 1, replications, self.z[:, None])  # P(X >= c)
        rng = np.random.default_rng(seed)
        counts = rng.multinomial(replications, np.full(n_ranks + 1, 1.0 / (n_ranks + 1)), size=n_simulations)
        self.null = np.sort(self.statistic_of_counts(counts))

    @classmethod
    def get(cls, replications: int, n_ranks: int, n_simulations: int) -> _EcdfNull:
        key = (replications, n_ranks, n_simulations)
        if key not in cls._cache:
            cls._cache[key] = cls(replications, n_ranks, n_simulations)
        return cls._cache[key]

    def pointwise(self, counts: np.ndarray) -> np.ndarray:
        below = np.cumsum(counts, axis=-1)[..., :-1]  # ranks < j for j = 1..L
        j = np.arange(self.n_ranks)
        return np.minimum(1.0, 2.0 * np.minimum(self.cdf[j, below], self.sf_minus[j, below]))

    def statistic_of_counts(self, counts: np.ndarray) -> np.ndarray:
        return self.pointwise(counts).min(axis=-1)

    def p_value(self, ranks: np.ndarray) -> float:
        statistic = self.statistic_of_counts(np.bincount(ranks, minlength=self.n_ranks + 1))
        return (1 + np.searchsorted(self.null, statistic, side="right")) / (1 + len(self.null))

    def band(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        """Simultaneous band of the ECDF difference F(z_j) - z_j at confidence `level` (over all j)."""
        gamma = np.quantile(self.null, 1.0 - level)
        lower = stats.binom.ppf(gamma / 2, self.replications, self.z) / self.replications - self.z
        upper = stats.binom.isf(gamma / 2, self.replications, self.z) / self.replications - self.z
        return lower, upper


def ecdf_uniformity(ranks: np.ndarray, n_ranks: int, n_simulations: int = 20_000) -> float:
    """Monte Carlo p-value of the simultaneous ECDF test of uniform ranks on {0, ..., L} (smallest: 1/(n+1))."""
    ranks = np.asarray(ranks, dtype=int)
    return float(_EcdfNull.get(len(ranks), n_ranks, n_simulations).p_value(ranks))


def uniformity_table(
    result: SBCResult, *, alpha: float = 0.01, bins: int | None = None, n_simulations: int = 20_000
) -> list[dict]:
    """Per quantity: chi-square statistic, its degrees of freedom and p-value, the ECDF test's p-value, and
    pass/fail at family-wise level `alpha`, Bonferroni-corrected over the 2 x Q tests of this result (a
    quantity fails if either test's p-value is below ``alpha / (2 Q)``)."""
    n_ranks = result.settings.n_ranks
    bins = default_bins(len(result.ranks), n_ranks) if bins is None else bins
    level = alpha / (2 * len(result.quantities))
    rows = []
    for q, name in enumerate(result.quantities):
        statistic, df, p_chi2 = chi_square_uniformity(result.ranks[:, q], n_ranks, bins)
        p_ecdf = ecdf_uniformity(result.ranks[:, q], n_ranks, n_simulations)
        rows.append(
            {
                "covariance_type": result.settings.covariance_type,
                "quantity": name,
                "chi2": statistic,
                "df": df,
                "p_chi2": p_chi2,
                "p_ecdf": p_ecdf,
                "level": level,
                "passed": bool(p_chi2 >= level and p_ecdf >= level),
            }
        )
    return rows


def _grid(n: int):
    import matplotlib.pyplot as plt

    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat


def _title(settings: SBCSettings, extra: str) -> str:
    s = settings
    error = (
        f", fitting prior scale x{s.prior_scale_error:g} ({s.prior_error_on})"
        if s.prior_scale_error != 1
        else ""
    )
    return (
        f"SBC {s.covariance_type}: K={s.n_components}, D={s.n_features}, N={s.n_samples}, R={s.replications}, "
        f"L={s.n_ranks}{error}. {extra}"
    )


def plot_rank_histograms(result: SBCResult, path, table: list[dict] | None = None, bins: int | None = None):
    """Rank histograms, one panel per quantity, with the expected count and its 99% pointwise band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_ranks, replications = result.settings.n_ranks, len(result.ranks)
    bins = default_bins(replications, n_ranks) if bins is None else bins
    table = uniformity_table(result, bins=bins) if table is None else table
    lower, upper = stats.binom.ppf([0.005, 0.995], replications, 1.0 / bins)
    fig, axes = _grid(len(result.quantities))
    edges = np.arange(bins + 1) * (n_ranks + 1) / bins - 0.5
    for ax, q, row in zip(axes, range(len(result.quantities)), table, strict=False):
        ax.axhspan(lower, upper, color="0.85", zorder=0)
        ax.axhline(replications / bins, color="0.4", lw=1, zorder=1)
        ax.hist(result.ranks[:, q], bins=edges, color="C0" if row["passed"] else "C3", alpha=0.75, zorder=2)
        ax.set_xlim(-0.5, n_ranks + 0.5)
        ax.set_title(
            f"{row['quantity']}\nchi2 p={row['p_chi2']:.3g}, ECDF p={row['p_ecdf']:.3g}",
            fontsize=9,
            color="black" if row["passed"] else "C3",
        )
        ax.tick_params(labelsize=8)
    fig.suptitle(_title(result.settings, "Grey: 99% pointwise band; red: fails."), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_ecdf_differences(
    result: SBCResult, path, table: list[dict] | None = None, level: float = 0.95, n_simulations: int = 20_000
):
    """ECDF of the scaled ranks minus the uniform CDF, per quantity, with the simultaneous `level` band;
    quantities that fail in `table` (from :func:`uniformity_table`) are drawn in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_ranks, replications = result.settings.n_ranks, len(result.ranks)
    null = _EcdfNull.get(replications, n_ranks, n_simulations)
    lower, upper = null.band(level)
    fig, axes = _grid(len(result.quantities))
    failed = {row["quantity"] for row in table or () if not row["passed"]}
    for ax, q, name in zip(axes, range(len(result.quantities)), result.quantities, strict=False):
        below = np.cumsum(np.bincount(result.ranks[:, q], minlength=n_ranks + 1))[:-1] / replications
        color = "C3" if name in failed else "C0"
        ax.fill_between(null.z, lower, upper, color="0.85", step="mid")
        ax.step(null.z, below - null.z, where="mid", color=color)
        ax.axhline(0, color="0.4", lw=0.8)
        ax.set_title(name, fontsize=9, color="C3" if name in failed else "black")
        ax.tick_params(labelsize=8)
    fig.suptitle(
        _title(result.settings, f"ECDF difference; grey: {level:.0%} simultaneous band."), fontsize=9
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
