"""Choosing the number of components: WAIC and PSIS-LOO of Bayesian fits next to EM's BIC, AIC and ICL."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bayes_gmm._validation import (
    check_covariance_type,
    check_fit_data,
    check_n_components,
    check_positive_int,
    checked_data,
    child_seed,
    seed_sequence,
)
from bayes_gmm.em_baseline import fit_em
from bayes_gmm.exceptions import ConvergenceWarning
from bayes_gmm.inference._arviz import compare, loo
from bayes_gmm.inference._fit import fit_gmm
from bayes_gmm.inference._verdict import fit_verdict
from bayes_gmm.inference._waic import waic
from bayes_gmm.models import OBSERVED
from bayes_gmm.models._covariance_priors import check_bayesian_covariance_type

#: How the predictive criteria pick k (LOO and WAIC plateau once k reaches the true value, so the smallest k
#: within one standard error of the best is taken).
ONE_SE_RULE = (
    "smallest k whose elpd is within one standard error of the difference (dse) of the best k's elpd, "
    "among the fits that converged (unconverged fits are excluded unless include_unconverged=True)"
)
#: The same rule when several covariance types are compared: "smallest" means fewest free parameters.
ONE_SE_RULE_TYPES = (
    "the (covariance type, k) with the fewest free parameters (then the smallest k) whose elpd is within one "
    "standard error of the difference (dse) of the best fit's elpd, among the fits that converged "
    "(unconverged fits are excluded unless include_unconverged=True)"
)
CRITERIA = ("waic", "loo", "bic", "aic", "icl")


@dataclass(frozen=True, eq=False)
class KSelection:
    """Fits for several numbers of components and the criteria that compare them.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per k (index ``n_components``; with several covariance types, one row per type and k,
        index ``covariance_type``, ``n_components``, types by their scikit-learn names where they have one), columns ``elpd_waic``, ``se_waic``, ``p_waic``,
        ``dse_waic`` (SE of the elpd difference to the best included k, the pick rule's), ``elpd_loo``,
        ``se_loo``, ``p_loo``, ``dse_loo``, ``n_high_pareto_k`` (observations whose PSIS Pareto k exceeds
        ArviZ's threshold), ``loo_rank`` and ``loo_weight`` (ArviZ ``compare`` of the included fits: rank
        and stacking weight; missing for an excluded fit), ``em_log_likelihood``, ``em_bic``, ``em_aic``,
        ``em_icl`` (scikit-learn sign: lower is better), ``rhat_max``, ``converged`` and
        ``convergence_problems`` (the fit's convergence verdict, as ``fit_gmm`` records it), and
        ``excluded`` (True for a fit left out of the WAIC/LOO picks and the stacking weights: an
        unconverged one, unless `include_unconverged`).
    picks : dict of str to int, or to (str, int) with several covariance types
        The k (or covariance type and k) each criterion picks: ``"waic"`` and ``"loo"`` by :data:`ONE_SE_RULE`
        among the fits not excluded (None when every fit is excluded); ``"bic"``, ``"aic"``, ``"icl"``
        (EM fits, unaffected by the Bayesian fits' convergence) by their minimum.
    comparison : pandas.DataFrame
        ArviZ's ``compare`` table (PSIS-LOO) of the fits not excluded, rows named ``"k=<k>"``
        (``"<type>,k=<k>"`` for several types); empty when every fit is excluded.
    fits : dict of int (or (str, int)) to xarray.DataTree
        The Bayesian fit for each k (or type and k).
    em_fits : dict of int (or (str, int)) to EMResult
        The EM fit for each k (also the start and relabelling reference of the Bayesian fit).
    rule : str
        The rule behind the WAIC and LOO picks.
    """

    table: pd.DataFrame
    picks: dict
    comparison: pd.DataFrame
    fits: dict = field(repr=False)
    em_fits: dict = field(repr=False)
    rule: str = ONE_SE_RULE


def select_k(
    X,
    n_components: int | Iterable[int] = 5,
    *,
    covariance_type: str = "full",
    em_n_init: int = 10,
    em_init: str = "hc",
    random_seed=None,
    progress: Callable[[str], None] | None = None,
    include_unconverged: bool = False,
    **fit_options,
) -> KSelection:
    """Fit k = 1..K components (or a given list) and compare them by WAIC, PSIS-LOO, BIC, AIC and ICL.

    Every k gets an EM fit (``em_n_init`` restarts) and a Bayesian fit by :func:`fit_gmm` started from it.
    WAIC and LOO usually plateau once k reaches the number of clusters the data support (extra components
    get tiny weights or duplicate others), so they pick the smallest k within one standard error of the
    best rather than the maximum; the information criteria pick their minimum.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    n_components : int or iterable of int, default 5
        An int K means k = 1, ..., K; otherwise the k values to fit (distinct, each >= 1).
    covariance_type : str or list of str, default "full"
        "full", "tied", "diag" or "spherical", or mclust's name of a model with a Bayesian prior: "VVV",
        "EEE", "VVI", "VII" (the same four), "EII", "EEI"; "E" or "V" for one feature. A list compares
        the types side by side: the table, picks and fits are then by (type, k), and WAIC/LOO pick the fit
        with the fewest free parameters within one standard error of the best.
    em_n_init : int, default 10
        EM restarts per k.
    em_init : {"hc", "kmeans", "kmeans++", "random"}, default "hc"
        EM initialisation (see :func:`bayes_gmm.em_baseline.fit_em`; "hc", its default, is mclust's
        hierarchical start plus screened k-means++ starts); data with many local maxima (e.g. galaxies)
        may need "random" with many restarts.
    random_seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Seeds every fit (each k gets its own stream); the same seed gives the same table.
    progress : callable, optional
        Called with a one-line message before each fit, e.g. ``print`` (``"fitting k=2 (full), 1 of 4
        ..."``). By default nothing is printed, as scikit-learn's estimators do by default; a fit can take
        a minute, so pass ``progress=print`` to follow it. The command line's ``select-k`` shows these
        lines on stderr (not with ``--quiet``).
    include_unconverged : bool, default False
        Whether fits that did not converge (their convergence verdict, see :func:`fit_gmm`) take part in
        the WAIC/LOO picks and the LOO stacking weights. By default they are listed in the table
        (``excluded`` True) but neither picked nor weighted, and do not set the bar of the pick rule: the
        elpd of chains that have not mixed estimates nothing.
    **fit_options
        Passed to :func:`fit_gmm` (``method``, ``draws``, ``tune``, ``chains``, ``backend``, ...). The
        pointwise log-likelihood is always kept, since WAIC and LOO need it.

    Returns
    -------
    KSelection

    Raises
    ------
    KeyboardInterrupt
        On Ctrl-C during any fit (see :func:`fit_gmm`): no later k is fitted and no selection returned.

    Warns
    -----
    bayes_gmm.exceptions.ConvergenceWarning
        For each fit that did not converge (from :func:`fit_gmm`), and when no fit is left to pick from.
    """
    X = checked_data(X)
    if not isinstance(include_unconverged, (bool, np.bool_)):
        raise TypeError(f"include_unconverged must be True or False; got {include_unconverged!r}.")
    types = _covariance_types(covariance_type)
    ks = _k_values(n_components, X.shape[0])
    for name in types:  # before the first fit
        check_bayesian_covariance_type(name)
        check_fit_data(X, max(ks), name)
    em_n_init = check_positive_int(em_n_init, "em_n_init")
    if "log_likelihood" in fit_options or "em" in fit_options:
        raise ValueError(
            "select_k sets log_likelihood and em itself (WAIC/LOO need the former; the latter is fitted per "
            "k); remove them from the options."
        )
    # One stream per k value (not per position), so k=3 gets the same fit in [2, 3] as in 1..5; the same
    # stream for every covariance type, so they are compared from the same random starts.
    root = seed_sequence(random_seed)
    keys = [(name, k) for name in types for k in ks]
    fits, em_fits, rows = {}, {}, []
    pointwise = {"waic": {}, "loo": {}}
    for position, (name, k) in enumerate(keys, start=1):
        em_seed, fit_seed = (int(s) for s in child_seed(root, k).generate_state(2))
        if progress is not None:
            progress(f"fitting k={k} ({name}), {position} of {len(keys)} ...")
        em = fit_em(X, k, covariance_type=name, init=em_init, n_init=em_n_init, random_seed=em_seed)
        idata = fit_gmm(
            X, k, covariance_type=name, em=em, log_likelihood=True, random_seed=fit_seed, **fit_options
        )
        waic_result, loo_result = waic(_log_lik(idata)), loo(idata)
        pointwise["waic"][name, k], pointwise["loo"][name, k] = waic_result.pointwise, loo_result["pointwise"]
        fits[name, k], em_fits[name, k] = idata, em
        rows.append(
            {
                "covariance_type": name,
                "n_components": k,
                "elpd_waic": waic_result.elpd,
                "se_waic": waic_result.se,
                "p_waic": waic_result.p_waic,
                "elpd_loo": loo_result["elpd_loo"],
                "se_loo": loo_result["se_loo"],
                "p_loo": loo_result["p_loo"],
                "n_high_pareto_k": loo_result["n_high_pareto_k"],
                "em_log_likelihood": em.log_likelihood,
                "em_bic": em.bic(),
                "em_aic": em.aic(),
                "em_icl": em.icl(X),
                "n_parameters": em.n_parameters,
                "rhat_max": float(idata.attrs.get("rhat_max", np.nan)),
            }
        )
    table = pd.DataFrame(rows).set_index(["covariance_type", "n_components"])
    verdicts = [fit_verdict(fits[key]) for key in keys]
    table["converged"] = [verdict.converged for verdict in verdicts]
    table["convergence_problems"] = ["; ".join(verdict.problems) for verdict in verdicts]
    table["excluded"] = ~table["converged"] & (not include_unconverged)
    included = [key for key in keys if not table.loc[key, "excluded"]]
    if not included:
        warnings.warn(
            "no fit converged, so WAIC and LOO pick no k and give no stacking weights (see the table's "
            "convergence_problems). Run more tune/draws, or pass include_unconverged=True to compare them "
            "anyway.",
            ConvergenceWarning,
            stacklevel=2,
        )
    for criterion in ("waic", "loo"):
        # Differences to the best included fit (the pick rule's bar); to the best of all when none is.
        best = table.loc[included or keys, f"elpd_{criterion}"].idxmax()
        table[f"dse_{criterion}"] = [
            _difference_se(pointwise[criterion][key], pointwise[criterion][best]) for key in keys
        ]
    labels = {key: _label(key) for key in keys}
    comparison = compare({labels[key]: fits[key] for key in included or keys})
    if not included:
        comparison = comparison.iloc[:0]
    table["loo_rank"] = pd.array(
        [comparison.loc[labels[key], "rank"] if key in included else pd.NA for key in keys], dtype="Int64"
    )
    table["loo_weight"] = [
        float(comparison.loc[labels[key], "weight"]) if key in included else np.nan for key in keys
    ]
    picks = {criterion: _pick_within_one_se(table, criterion) for criterion in ("waic", "loo")}
    picks.update({criterion: table[f"em_{criterion}"].idxmin() for criterion in ("bic", "aic", "icl")})
    picks = {c: None if pick is None else (str(pick[0]), int(pick[1])) for c, pick in picks.items()}
    if len(types) == 1:  # one covariance type: tables and picks by k alone, as they have always been
        table = table.droplevel("covariance_type")
        picks = {criterion: None if pick is None else pick[1] for criterion, pick in picks.items()}
        fits, em_fits = ({k: d[types[0], k] for k in ks} for d in (fits, em_fits))
        comparison = comparison.rename(index={labels[types[0], k]: f"k={k}" for k in ks})
        rule = ONE_SE_RULE
    else:
        rule = ONE_SE_RULE_TYPES
    return KSelection(table=table, picks=picks, comparison=comparison, fits=fits, em_fits=em_fits, rule=rule)


def _covariance_types(covariance_type) -> list[str]:
    """One name or a sequence of names, checked; every name once."""
    if isinstance(covariance_type, str):
        names = [covariance_type]
    elif isinstance(covariance_type, (list, tuple)):
        names = list(covariance_type)
    else:
        raise ValueError(
            f"covariance_type must be a covariance type's name or a list of names; got {covariance_type!r}. "
            f"Use e.g. covariance_type='full' or covariance_type=['full', 'EEE', 'EII']."
        )
    if not names:
        raise ValueError(
            "covariance_type must name at least one covariance type; got an empty list. Use e.g. ['full']."
        )
    names = [check_covariance_type(name) for name in names]
    if len(set(names)) != len(names):
        raise ValueError(
            f"covariance_type must not name a type twice (aliases count as the same: VVV is full); got "
            f"{covariance_type!r}. Remove the repeated one."
        )
    return names


def _label(key) -> str:
    return f"{key[0]},k={key[1]}"


def _k_values(n_components, n_samples: int) -> list[int]:
    if isinstance(n_components, (int, np.integer)) and not isinstance(n_components, bool):
        ks = list(range(1, check_n_components(n_components) + 1))
    else:
        try:
            ks = [check_n_components(k) for k in n_components]
        except TypeError:
            raise TypeError(
                f"n_components must be an int K (fits k = 1..K) or an iterable of ints; got "
                f"{n_components!r}. Use e.g. n_components=5 or n_components=[2, 3, 4]."
            ) from None
    if not ks or len(set(ks)) != len(ks):
        raise ValueError(
            f"n_components must give at least one k and no k twice; got {n_components!r}. "
            f"Use e.g. n_components=[1, 2, 3]."
        )
    if max(ks) > n_samples:
        raise ValueError(
            f"n_components asks for k={max(ks)} but X has only {n_samples} samples; use k <= {n_samples}."
        )
    return sorted(ks)


def _log_lik(idata) -> np.ndarray:
    return idata.log_likelihood[OBSERVED].transpose("chain", "draw", "obs_id").to_numpy()


def _difference_se(pointwise: np.ndarray, best_pointwise: np.ndarray) -> float:
    """SE of the elpd difference between two models from their pointwise elpd (as ArviZ's ``dse``)."""
    diff = pointwise - best_pointwise
    return float(np.sqrt(diff.size * np.var(diff)))


def _pick_within_one_se(table: pd.DataFrame, criterion: str):
    """The simplest fit (fewest free parameters, then fewest components) within one SE of the best, among
    those not ``excluded``; None when every fit is excluded."""
    # An unconverged fit's elpd is not an estimate of anything: it neither wins nor sets the bar.
    usable = table[~table["excluded"]]
    if usable.empty:
        return None
    elpd, dse = usable[f"elpd_{criterion}"], usable[f"dse_{criterion}"]
    within = usable[elpd >= elpd.max() - dse]
    order = np.lexsort((within.index.get_level_values("n_components"), within["n_parameters"].to_numpy()))
    return within.index[order[0]]
