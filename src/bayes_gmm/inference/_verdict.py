"""What "converged" means for a fit, decided in one place: the thresholds, the verdict and its reasons.

Every consumer of a fit (``fit_gmm``'s warning and attrs, ``select_k``'s table and picks, the figures'
caveats, the command line's summaries) asks :func:`fit_verdict` or :func:`judge`, so they never disagree.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from bayes_gmm.exceptions import ConvergenceWarning

#: Largest acceptable rank-normalised split R-hat (after relabelling). Vehtari, Gelman, Simpson, Carpenter
#: and Buerkner (2021, "Rank-normalization, folding, and localization: an improved R-hat", Bayesian
#: Analysis) recommend 1.01: above it the chains have not yet mixed, so they describe different
#: distributions; the older 1.1 and 1.05 bars let chains stuck in different modes pass.
MAX_RHAT = 1.01
#: Smallest bulk and tail effective sample size per chain (the same paper): below 100 per chain (400 for
#: four chains) R-hat itself and the Monte Carlo errors of means and quantiles are not reliable.
MIN_ESS_PER_CHAIN = 100
#: Divergent transitions tolerated: none. A divergence means NUTS met curvature its step size cannot
#: follow (in a mixture, typically a component collapsing onto few points), so that region of the
#: posterior is under-explored and the draws are biased (Betancourt 2017, "A conceptual introduction to
#: Hamiltonian Monte Carlo").
MAX_DIVERGENCES = 0
#: Largest share of draws that relabelling to the EM labelling may have to permute. Every chain starts in
#: the EM labelling, so a relabelled draw is a label switch inside a chain: a few per cent happen where two
#: clusters overlap, and the matching handles them; when more than a quarter of the draws switch, the
#: sampler moves freely between components (an empty or duplicated one), the components are not
#: identified, and per-component summaries (means, ellipses, weights) describe the matching, not the data.
MAX_RELABELLED_FRACTION = 0.25
#: Sparse mixtures (``fit_sparse_gmm``): largest R-hat of the number of non-empty clusters. The empty
#: components wander over their prior, so their parameters have no meaningful R-hat; the number of
#: clusters is the quantity of interest, an integer with a handful of values, whose rank-normalised
#: R-hat is coarse, hence the looser bar.
MAX_N_CLUSTERS_RHAT = 1.05
#: What to do about each kind of failure, for the warning.
_NUTS_ADVICE = (
    "Run more tune/draws, raise target_accept (e.g. 0.95), or use fewer components: an empty or duplicated "
    "component is often the cause."
)
_ADVI_ADVICE = "Raise advi_max_iter or advi_learning_rate, or use method='nuts'."
_EM_ADVICE = "Raise max_iter."


@dataclass(frozen=True)
class ConvergenceVerdict:
    """Whether a fit converged by the checks of :mod:`bayes_gmm.inference._verdict`, and if not, why.

    Attributes
    ----------
    converged : bool
        True when every check of the fit's method passed.
    problems : tuple of str
        One short text per failed check, e.g. ``"R-hat 1.246 > 1.01"`` (empty when converged).
    advice : str
        What to change, for the warning.
    checks : str
        What was checked, e.g. ``"R-hat <= 1.01, bulk and tail ESS >= 100 per chain, ..."``.
    """

    converged: bool
    problems: tuple[str, ...] = ()
    advice: str = ""
    checks: str = ""

    @property
    def caveat(self) -> str:
        """``"NOT CONVERGED: <problems>"`` for figures and summaries; empty when converged."""
        return "" if self.converged else "NOT CONVERGED: " + "; ".join(self.problems)

    @property
    def attrs(self) -> dict:
        """The verdict as a fit's attrs: ``converged`` (1 or 0, netCDF has no booleans) and
        ``convergence_problems`` (the problems joined by "; ", empty when converged)."""
        return {"converged": int(self.converged), "convergence_problems": "; ".join(self.problems)}

    def warn(self, what: str = "the fit", stacklevel: int = 2) -> None:
        """Raise a :class:`~bayes_gmm.exceptions.ConvergenceWarning` with the problems, if there are any."""
        if not self.converged:
            warnings.warn(
                f"{what} did not converge: {'; '.join(self.problems)}. {self.advice}",
                ConvergenceWarning,
                stacklevel=stacklevel + 1,
            )


_RELABELLED_CHECK = f"at most {100 * MAX_RELABELLED_FRACTION:.0f}% of draws relabelled"
_NUTS_CHECKS = (
    f"R-hat <= {MAX_RHAT}, bulk and tail ESS >= {MIN_ESS_PER_CHAIN} per chain, no divergent transitions, "
    + _RELABELLED_CHECK
)
_ADVI_CHECKS = "ELBO plateaued before advi_max_iter, " + _RELABELLED_CHECK
_SPARSE_CHECKS = f"no divergent transitions, R-hat of the number of clusters <= {MAX_N_CLUSTERS_RHAT}"


def _verdict(problems: list[str], advice: str, checks: str) -> ConvergenceVerdict:
    return ConvergenceVerdict(not problems, tuple(problems), advice if problems else "", checks)


def judge(attrs: dict, n_chains: int) -> ConvergenceVerdict:
    """The verdict on a fit from its diagnostics in `attrs` (as :func:`bayes_gmm.inference.fit_gmm` stores them).

    NUTS: R-hat <= :data:`MAX_RHAT`, bulk and tail ESS >= :data:`MIN_ESS_PER_CHAIN` per chain, at most
    :data:`MAX_DIVERGENCES` divergent transitions, and at most :data:`MAX_RELABELLED_FRACTION` of the draws
    relabelled. One chain cannot be judged (R-hat compares chains), so it does not count as converged; nor
    does a missing or NaN diagnostic. ADVI (``method`` "advi" or "fullrank_advi"): its ELBO plateaued
    (``advi_converged``) and the relabelled share as for NUTS; R-hat and ESS do not apply to draws from
    an approximation. A sparse mixture (``sparse_concentration`` in `attrs`): no divergences and the R-hat
    of the number of clusters (``n_clusters_rhat``) <= :data:`MAX_N_CLUSTERS_RHAT`.
    """
    method = attrs.get("method", "nuts")
    problems = []
    if method != "nuts":
        if not attrs.get("advi_converged", 0):
            problems.append(
                f"ADVI stopped at advi_max_iter={attrs.get('advi_iterations', '?')} before its ELBO plateaued "
                f"(relative change < advi_tolerance={attrs.get('advi_tolerance', '?')})"
            )
        _check_relabelling(attrs, problems)
        return _verdict(problems, _ADVI_ADVICE, _ADVI_CHECKS)
    divergences = attrs.get("n_divergences", 0)
    if divergences > MAX_DIVERGENCES:
        problems.append(f"{divergences} divergent transition{'s' if divergences != 1 else ''}")
    if n_chains < 2:
        problems.insert(0, "one chain: R-hat needs 2 or more chains to check that they agree")
        return _verdict(problems, "Run chains >= 2.", _NUTS_CHECKS)
    if "sparse_concentration" in attrs:
        rhat = attrs.get("n_clusters_rhat", float("nan"))
        if not rhat <= MAX_N_CLUSTERS_RHAT:
            problems.append(f"R-hat of the number of clusters {rhat:.3f} > {MAX_N_CLUSTERS_RHAT}")
        return _verdict(
            problems, "Run more tune/draws, or raise target_accept or the concentration.", _SPARSE_CHECKS
        )
    rhat = attrs.get("rhat_max", float("nan"))
    if not rhat <= MAX_RHAT:
        problems.insert(0, f"R-hat {rhat:.3f} > {MAX_RHAT}")
    min_ess = MIN_ESS_PER_CHAIN * n_chains
    for kind in ("bulk", "tail"):
        ess = attrs.get(f"ess_{kind}_min", float("nan"))
        if not ess >= min_ess:
            problems.append(f"{kind} ESS {ess:.0f} < {min_ess}")
    _check_relabelling(attrs, problems)
    return _verdict(problems, _NUTS_ADVICE, _NUTS_CHECKS)


def _check_relabelling(attrs: dict, problems: list[str]) -> None:
    share = attrs.get("relabelled_fraction", 0.0)
    if not share <= MAX_RELABELLED_FRACTION:
        problems.append(f"{100 * share:.1f}% of draws relabelled > {100 * MAX_RELABELLED_FRACTION:.0f}%")


def fit_verdict(fit) -> ConvergenceVerdict | None:
    """The verdict on `fit`: a Bayesian fit by its diagnostics (:func:`judge`), an EM fit by whether EM
    converged; None for a DataTree without a fit's diagnostics (one not made by ``fit_gmm``).

    Parameters
    ----------
    fit : xarray.DataTree or EMResult

    Returns
    -------
    ConvergenceVerdict or None
    """
    from bayes_gmm.em_baseline import EMResult

    if isinstance(fit, EMResult):
        iterations = f"{fit.n_iter} iteration{'s' if fit.n_iter != 1 else ''}"
        problem = f"EM stopped after {iterations} before the log-likelihood settled"
        return _verdict([] if fit.converged else [problem], _EM_ADVICE, "the EM log-likelihood settled")
    attrs = getattr(fit, "attrs", None) or {}
    if "method" not in attrs:
        return None
    return judge(attrs, fit.posterior.sizes["chain"])


def record_verdict(fit, stacklevel: int = 2) -> ConvergenceVerdict:
    """Judge `fit` (a Bayesian fit), store the verdict in its attrs and warn if it did not converge."""
    verdict = fit_verdict(fit)
    fit.attrs.update(verdict.attrs)
    verdict.warn(stacklevel=stacklevel + 1)
    return verdict
