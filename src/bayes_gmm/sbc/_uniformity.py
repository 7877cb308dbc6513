"""Tests of uniformity of SBC ranks: binned chi-square and the simultaneous ECDF test.

One job: decide whether the ranks of each quantity are uniform on {0, ..., L}. Pearson's chi-square test of
the binned ranks (:func:`chi_square_uniformity`, bins from :func:`default_bins`) and the simultaneous ECDF
test of Säilynoja, Bürkner & Vehtari (2022), whose p-value is a Monte Carlo estimate
(:func:`ecdf_uniformity`), are combined per quantity with a Bonferroni correction in
:func:`uniformity_table`.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from bayes_gmm.sbc._settings import SBCResult

__all__ = ["chi_square_uniformity", "default_bins", "ecdf_uniformity", "uniformity_table"]


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
