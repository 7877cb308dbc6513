"""Plain-text summaries of fitted mixtures, for the command line and for printing in scripts."""

from __future__ import annotations

import numpy as np

from bayes_gmm.em_baseline import EMResult


def _component_covariance(result: EMResult, k: int) -> np.ndarray:
    cov, d = result.covariances, result.n_features
    return {
        "full": lambda: cov[k],
        "tied": lambda: cov,
        "diag": lambda: np.diag(cov[k]),
        "spherical": lambda: np.eye(d) * cov[k],
    }[result.covariance_type]()


def format_em_summary(result: EMResult, feature_names=None) -> str:
    """A short, readable summary of an EM fit: fit diagnostics, criteria and a table per component."""
    names = list(feature_names) if feature_names is not None else [f"x{j}" for j in range(result.n_features)]
    width = max(10, *(len(n) + 2 for n in names))
    status = "converged" if result.converged else "NOT converged (raise max_iter)"
    lines = [
        f"Gaussian mixture by EM: {result.n_components} components, covariance '{result.covariance_type}', "
        f"{result.n_samples} samples x {result.n_features} features",
        f"  {status} after {result.n_iter} iterations; log-likelihood {result.log_likelihood:.4f}; "
        f"{result.n_parameters} free parameters",
        f"  BIC {result.bic():.4f}   AIC {result.aic():.4f}   ICL {result.icl():.4f}   (lower is better)",
        "",
        "  component  weight" + "".join(f"{'mean ' + n:>{width + 5}}{'sd ' + n:>{width + 3}}" for n in names),
    ]
    for k in np.argsort(-result.weights):
        sd = np.sqrt(np.diag(_component_covariance(result, k)))
        cells = "".join(
            f"{m:>{width + 5}.4g}{s:>{width + 3}.4g}" for m, s in zip(result.means[k], sd, strict=True)
        )
        lines.append(f"  {k:>9}  {result.weights[k]:6.3f}{cells}")
    if result.n_features > 1 and result.covariance_type in ("full", "tied"):
        lines.append("")
        lines.append("  correlations (within component):")
        for k in np.argsort(-result.weights):
            cov = _component_covariance(result, k)
            corr = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
            pairs = [
                f"{names[i]}~{names[j]} {corr[i, j]:+.3f}"
                for i in range(result.n_features)
                for j in range(i + 1, result.n_features)
            ]
            lines.append(f"  {k:>9}  " + ", ".join(pairs))
    return "\n".join(lines)
