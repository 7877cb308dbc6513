"""Figures of an SBC result: rank histograms and ECDF differences, one panel per quantity.

One job: draw what :mod:`bayes_gmm.sbc._uniformity` tests, with failing quantities in red. Matplotlib is
imported lazily (Agg backend) and each function writes a PNG to the given path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import stats

from bayes_gmm.sbc._settings import SBCResult, SBCSettings
from bayes_gmm.sbc._uniformity import _EcdfNull, default_bins, uniformity_table

__all__ = ["plot_ecdf_differences", "plot_rank_histograms"]


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
