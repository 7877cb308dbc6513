"""Galaxy velocities: one-dimensional mixtures, a likelihood with many local maxima, density with a band.

Run ``python examples/galaxies.py --out galaxies_out`` (a few minutes on two cores), or with ``--quick``.
Writes density.png (Bayesian posterior mean density with a 90% band) and em_density.png into --out.

Published figures to compare with (R mclust, see the project's reference notes): 1-D "full" (V) models,
3 components logL -203.1792 and BIC (mclust sign, 2 logL - p log n) -441.6122; 4 components -443.3997;
5 components -446.3497. EM reaches the 3-component optimum only with many random restarts (mclust's
default start stops at -212.08), hence n_init=50 here. Richardson & Green (1997) put most posterior mass
on 5 to 7 components with their priors: a qualitative check only.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import arviz as az
import matplotlib.pyplot as plt

from bayes_gmm.datasets import load_galaxies
from bayes_gmm.em_baseline import fit_em
from bayes_gmm.exceptions import ConvergenceWarning
from bayes_gmm.inference import compare_with_em, fit_gmm
from bayes_gmm.plots import plot_density, save_figure

FULL = {"draws": 1000, "tune": 1000, "chains": 4, "target_accept": 0.95}
QUICK = {"draws": 150, "tune": 150, "chains": 2}
PUBLISHED_BIC = {3: -441.6122, 4: -443.3997, 5: -446.3497}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Galaxies: 1-D GMMs by EM and Bayesian inference.")
    parser.add_argument("--quick", action="store_true", help="short chains: a smoke test, not for inference")
    parser.add_argument("--out", type=Path, default=Path("galaxies_out"), help="folder for the figures")
    parser.add_argument("--seed", type=int, default=0, help="random seed (EM restarts and sampler)")
    args = parser.parse_args(argv)
    if args.quick:
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        print("--quick: short chains, convergence warnings suppressed; numbers are not for inference")

    X = load_galaxies()
    print("EM, 1-D full covariance, 50 random restarts per k (BIC in mclust's sign: higher is better)")
    fits = {}
    for k in range(1, 6):
        fits[k] = fit_em(X, k, covariance_type="full", init="random", n_init=50, random_seed=args.seed)
        published = f"   mclust: {PUBLISHED_BIC[k]}" if k in PUBLISHED_BIC else ""
        print(f"  k={k}: log-likelihood {fits[k].log_likelihood:9.4f}  BIC {-fits[k].bic():9.4f}{published}")
    em = fits[3]  # mclust's choice; the published logL is -203.1792

    idata = fit_gmm(
        X, 3, covariance_type="full", em=em, random_seed=args.seed, **(QUICK if args.quick else FULL)
    )
    attrs = idata.attrs
    print(
        f"\nNUTS, k=3 ({attrs['backend']}): {attrs['sampling_time_s']:.0f} s, max R-hat {attrs['rhat_max']:.3f}, "
        f"divergences {attrs.get('n_divergences', 0)}"
    )
    print(az.summary(idata, var_names=["weights", "means"]).to_string())
    print("\nPosterior beside EM:")
    print(compare_with_em(idata, em).round(3).to_string(index=False))
    print("\nPSIS-LOO:", az.loo(idata))

    ax = plot_density(idata)
    ax.set(xlabel="velocity (1000 km/s)", title="Galaxies, k = 3: posterior mean density and 90% band")
    print("wrote", save_figure(ax, args.out / "density.png"))
    plt.close(ax.figure)
    ax = plot_density(em, X)
    ax.set(
        xlabel="velocity (1000 km/s)", title=f"Galaxies, EM k = 3 (log-likelihood {em.log_likelihood:.2f})"
    )
    print("wrote", save_figure(ax, args.out / "em_density.png"))
    plt.close(ax.figure)


if __name__ == "__main__":
    main()
