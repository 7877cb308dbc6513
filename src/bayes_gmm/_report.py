"""Plain-text summaries of fitted mixtures, for the command line and for printing in scripts."""

from __future__ import annotations

import numpy as np

from bayes_gmm._validation import default_feature_names
from bayes_gmm.covariance import get_structure
from bayes_gmm.em_baseline import EMResult
from bayes_gmm.inference._verdict import fit_verdict


def format_em_summary(result: EMResult, feature_names=None) -> str:
    """A short, readable summary of an EM fit: fit diagnostics, criteria and a table per component.

    Features are labelled by `feature_names`, by default the fit's own (``x0, x1, ...`` if it has none).
    """
    if feature_names is None:
        feature_names = result.feature_names or default_feature_names(result.n_features)
    names = list(feature_names)
    covariances = result.full_covariances()
    width = max(10, *(len(n) + 2 for n in names))
    status = "converged" if result.converged else "NOT converged (raise max_iter)"
    lines = [
        *_verdict_header(result),
        f"Gaussian mixture by EM: {result.n_components} components, covariance '{result.covariance_type}', "
        f"{result.n_samples} samples x {result.n_features} features",
        f"  {status} after {result.n_iter} iterations; log-likelihood {result.log_likelihood:.4f}; "
        f"{result.n_parameters} free parameters",
        f"  BIC {result.bic():.4f}   AIC {result.aic():.4f}   ICL {result.icl():.4f}   (lower is better)",
        "",
        "  component  weight" + "".join(f"{'mean ' + n:>{width + 5}}{'sd ' + n:>{width + 3}}" for n in names),
    ]
    for k in np.argsort(-result.weights):
        sd = np.sqrt(np.diag(covariances[k]))
        cells = "".join(
            f"{m:>{width + 5}.4g}{s:>{width + 3}.4g}" for m, s in zip(result.means[k], sd, strict=True)
        )
        lines.append(f"  {k:>9}  {result.weights[k]:6.3f}{cells}")
    if result.n_features > 1 and get_structure(result.covariance_type).correlated:
        order = np.argsort(-result.weights)
        lines += _component_lines(
            "correlations (within component)", order, _correlation_cells(_correlations(covariances), names)
        )
    return "\n".join(lines)


def _correlations(covariances: np.ndarray) -> np.ndarray:
    """The correlation matrices of covariance matrices (last two axes)."""
    sd = np.sqrt(np.diagonal(covariances, axis1=-2, axis2=-1))
    return covariances / (sd[..., :, None] * sd[..., None, :])


def _correlation_cells(correlations: np.ndarray, names) -> list[list[str]]:
    """Per component, ``a~b +0.380`` for each pair of features."""
    n = len(names)
    return [
        [f"{names[i]}~{names[j]} {corr[i, j]:+.3f}" for i in range(n) for j in range(i + 1, n)]
        for corr in correlations
    ]


def _component_lines(title: str, order, cells: list[list[str]], labels=None) -> list[str]:
    """A titled block of one line per component (in `order`), its cells joined by commas."""
    labels = list(range(len(cells))) if labels is None else list(labels)
    return ["", f"  {title}:", *(f"  {labels[k]:>9}  " + ", ".join(cells[k]) for k in order)]


def _within_component_lines(idata) -> list[str]:
    """A Bayesian fit's correlations within components (posterior means of each draw's), where modelled.

    The standard deviations are in the comparison with EM (:func:`format_em_comparison`).
    """
    names = [str(name) for name in idata.posterior["feature"].to_numpy()]
    if len(names) < 2 or not get_structure(idata.attrs["covariance_type"]).correlated:
        return []
    covariances = idata.posterior["covariances"].transpose(..., "component", "feature", "feature_cov")
    correlations = _correlations(covariances.to_numpy()).mean(axis=(0, 1))
    labels = idata.posterior["component"].to_numpy()
    return _component_lines(
        "correlations (within component, posterior means)",
        range(len(labels)),
        _correlation_cells(correlations, names),
        labels,
    )


_METHOD_NAMES = {"nuts": "NUTS", "advi": "mean-field ADVI", "fullrank_advi": "full-rank ADVI"}


def format_bayes_summary(idata, parameters, membership, loo: dict | None = None) -> str:
    """A short, readable summary of a Bayesian fit.

    Parameters
    ----------
    idata : xarray.DataTree
        From :func:`bayes_gmm.inference.fit_gmm`.
    parameters : pandas.DataFrame
        The parameter summary table (ArviZ ``summary``) to print.
    membership : xarray.Dataset
        From :func:`bayes_gmm.inference.membership_probabilities`.
    loo : dict, optional
        PSIS-LOO figures (``elpd_loo``, ``se_loo``, ``p_loo``, ``n_high_pareto_k``).
    """
    attrs, post = idata.attrs, idata.posterior
    n_obs, n_features = idata.observed_data["obs"].shape
    method = attrs["method"]
    lines = [
        *_verdict_header(idata),
        f"Bayesian Gaussian mixture by {_METHOD_NAMES[method]} ({attrs['backend']}): {attrs['n_components']} "
        f"components, covariance '{attrs['covariance_type']}', {n_obs} samples x {n_features} features",
    ]
    if method == "nuts":
        compile_note = (
            f" (of which compiling {attrs['compile_time_s']:.1f} s)" if "compile_time_s" in attrs else ""
        )
        lines.append(
            f"  {post.sizes['chain']} chains x {post.sizes['draw']} draws in {attrs['sampling_time_s']:.1f} s"
            f"{compile_note}; "
            f"max R-hat {attrs.get('rhat_max', float('nan')):.3f}, min ESS bulk "
            f"{attrs.get('ess_bulk_min', float('nan')):.0f} / tail {attrs.get('ess_tail_min', float('nan')):.0f}, "
            f"{attrs.get('n_divergences', 0)} divergences"
        )
    else:
        status = "ELBO plateaued" if attrs["advi_converged"] else "ELBO did NOT plateau"
        lines.append(
            f"  {status} after {attrs['advi_iterations']} iterations in {attrs['sampling_time_s']:.1f} s; "
            f"final ELBO {attrs['elbo_final']:.2f}; {post.sizes['draw']} draws from the approximation"
        )
    lines.append(
        f"  draws relabelled to the EM labelling: {100 * attrs['relabelled_fraction']:.1f}%"
        + (
            f" (max R-hat before relabelling {attrs['rhat_max_before_relabelling']:.3f})"
            if "rhat_max_before_relabelling" in attrs
            else ""
        )
    )
    verdict = fit_verdict(idata)
    if verdict is not None and verdict.converged:
        lines.append(f"  converged: {verdict.checks}")
    if loo is not None:
        lines.append(
            f"  elpd_loo {loo['elpd_loo']:.2f} (SE {loo['se_loo']:.2f}), p_loo {loo['p_loo']:.2f}, "
            f"{loo['n_high_pareto_k']} observation(s) with high Pareto k"
        )
    uncertain = int((membership["max_probability"] < 0.9).sum())
    lines.append(f"  assignments: {uncertain} of {n_obs} points have no component with probability >= 0.9")
    lines += [
        "",
        "  posterior summary (90% equal-tailed intervals):",
        _indent(parameters.to_string(float_format=_fmt)),
        *_within_component_lines(idata),
    ]
    return "\n".join(lines)


def _verdict_header(fit) -> list[str]:
    """The summary's first lines for a fit that did not converge (none for one that did)."""
    verdict = fit_verdict(fit)
    if verdict is None or verdict.converged:
        return []
    return [
        f"{verdict.caveat}.",
        f"  Checked: {verdict.checks}. {verdict.advice} Do not rely on the results below until it converges.",
        "",
    ]


def format_em_comparison(table) -> str:
    """The Bayesian-vs-EM table of :func:`bayes_gmm.inference.compare_with_em` as text."""
    return "\n".join(
        [
            "  Bayesian posterior vs EM (difference = posterior mean - EM; in SD = difference / posterior SD):",
            _indent(table.to_string(index=False, float_format=_fmt)),
        ]
    )


def format_k_selection(selection) -> str:
    """The table of :func:`bayes_gmm.inference.select_k` with the k each criterion picks."""
    columns = [
        "elpd_loo",
        "se_loo",
        "dse_loo",
        "elpd_waic",
        "se_waic",
        "p_loo",
        "n_high_pareto_k",
        "loo_weight",
    ]
    columns += ["em_log_likelihood", "em_bic", "em_aic", "em_icl", "rhat_max", "converged", "excluded"]
    picks = ", ".join(f"{name.upper()} {_pick_text(pick)}" for name, pick in selection.picks.items())
    what = "covariance type and " if "covariance_type" in selection.table.index.names else ""
    table = selection.table
    lines = [
        f"Choosing the {what}number of components (elpd: higher is better; EM BIC/AIC/ICL: lower is better)",
        _indent(table[columns].to_string(float_format=_fmt)),
        "",
        f"  picks: {picks}",
        f"  WAIC/LOO rule: {selection.rule}.",
    ]
    unconverged = table[~table["converged"]]
    if len(unconverged):
        lines += ["", "  NOT CONVERGED (Bayesian fit; see the warnings for what to change):"]
        for key, row in unconverged.iterrows():
            use = "excluded from" if row["excluded"] else "kept in (include_unconverged)"
            lines.append(
                f"    {_pick_text(key)}: {row['convergence_problems']}; {use} the WAIC/LOO picks and weights"
            )
    return "\n".join(lines)


def _pick_text(pick) -> str:
    if pick is None:
        return "none (no converged fit)"
    return f"{pick[0]},k={pick[1]}" if isinstance(pick, tuple) else f"k={pick}"


def _fmt(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.1f}"


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def format_model_search(search, n_best: int = 3) -> str:
    """The table of :func:`bayes_gmm.em_baseline.search_models`: BIC per covariance model (rows) and K
    (columns), as mclust prints it, and the best few (model, K) by BIC and by ICL."""
    bic = search.table["bic"].unstack("n_components")
    bic = bic.reindex(
        list(dict.fromkeys(search.table.index.get_level_values("covariance_type")))
    )  # search order
    lines = [
        "Covariance models by EM: BIC (lower is better; mclust reports the negative), one row per model",
        _indent(bic.to_string(float_format=_fmt, na_rep="failed")),
        "",
    ]
    for criterion in ("bic", "icl"):
        best = search.best(n_best, criterion)
        picks = ", ".join(f"{model},{k} ({value:.1f})" for (model, k), value in best[criterion].items())
        lines.append(f"  best by {criterion.upper()}: {picks}")
    return "\n".join(lines)
