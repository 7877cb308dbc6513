"""Old Faithful: a two-component full-covariance GMM by EM and by Bayesian inference (NUTS).

Run ``python examples/faithful.py --out faithful_out`` (about a minute on two cores), or with ``--quick``
for a smoke test with short chains. Writes clusters.png, uncertainty.png and density.png into --out.

Published figures to compare with (R mclust, see the project's reference notes): "full" (VVV) covariance,
1 component logL -1289.797, 2 components logL -1130.264; mclust's own BIC choice is "tied" (EEE) with
3 components, logL -1126.326.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import arviz as az
import matplotlib.pyplot as plt

from bayes_gmm.datasets import load_faithful
from bayes_gmm.em_baseline import fit_em
from bayes_gmm.exceptions import ConvergenceWarning
from bayes_gmm.inference import compare_with_em, fit_gmm, membership_probabilities
from bayes_gmm.plots import plot_clusters, plot_density, plot_membership_uncertainty, save_figure

FULL = {"draws": 1000, "tune": 1000, "chains": 4}
QUICK = {"draws": 150, "tune": 150, "chains": 2}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Old Faithful: EM and Bayesian GMM, k = 2.")
    parser.add_argument("--quick", action="store_true", help="short chains: a smoke test, not for inference")
    parser.add_argument("--out", type=Path, default=Path("faithful_out"), help="folder for the figures")
    parser.add_argument("--seed", type=int, default=0, help="random seed (EM restarts and sampler)")
    args = parser.parse_args(argv)
    if args.quick:
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        print("--quick: short chains, convergence warnings suppressed; numbers are not for inference")

    X = load_faithful()
    for k, published in ((1, -1289.797), (2, -1130.264)):
        em_k = fit_em(X, k, covariance_type="full", n_init=10, random_seed=args.seed)
        print(
            f"EM full k={k}: log-likelihood {em_k.log_likelihood:.3f} (mclust: {published})  BIC {em_k.bic():.2f}"
        )
    em = fit_em(X, 2, covariance_type="full", n_init=10, random_seed=args.seed)

    idata = fit_gmm(
        X, 2, covariance_type="full", em=em, random_seed=args.seed, **(QUICK if args.quick else FULL)
    )
    attrs = idata.attrs
    print(
        f"\nNUTS ({attrs['backend']}): {attrs['sampling_time_s']:.0f} s, max R-hat {attrs['rhat_max']:.3f}, "
        f"min bulk ESS {attrs['ess_bulk_min']:.0f}, divergences {attrs.get('n_divergences', 0)}"
    )
    print(az.summary(idata, var_names=["weights", "means"]).to_string())
    print("\nPosterior beside EM:")
    print(compare_with_em(idata, em).round(3).to_string(index=False))
    membership = membership_probabilities(idata)
    uncertain = int((membership["max_probability"] < 0.9).sum())
    print(f"\npoints with posterior membership probability below 0.9: {uncertain} of {X.shape[0]}")

    figures = {
        "clusters.png": plot_clusters(idata, em=em, random_seed=args.seed),
        "uncertainty.png": plot_membership_uncertainty(idata),
        "density.png": plot_density(idata),
    }
    for name, ax in figures.items():
        print("wrote", save_figure(ax, args.out / name))
        plt.close(ax.figure)


if __name__ == "__main__":
    main()
