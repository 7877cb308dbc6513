"""How many galaxy clusters? One overfitted ("sparse") mixture instead of one fit per k.

Run ``python examples/sparse_galaxies.py`` (several minutes on two cores; ``--backend nutpie`` samples
much faster once compiled), or ``--quick`` for a smoke test.

The model has ``--max-components`` 1-D components and a symmetric Dirichlet(0.1) prior on the weights,
which empties the components the data do not need; the number of clusters is the number of non-empty
components in an allocation drawn from each posterior draw. Richardson & Green (1997), with their own
priors and reversible-jump MCMC, put the mode of the posterior over k near 6 with most mass on 5 to 7;
other priors give other answers, so compare qualitatively.
"""

from __future__ import annotations

import argparse
import warnings

from bayes_gmm.datasets import load_galaxies
from bayes_gmm.exceptions import ConvergenceWarning
from bayes_gmm.inference import fit_sparse_gmm, n_clusters_distribution


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Galaxies: posterior over the number of clusters.")
    parser.add_argument("--quick", action="store_true", help="short chains: a smoke test, not for inference")
    parser.add_argument("--max-components", type=int, default=8)
    parser.add_argument("--concentration", type=float, default=0.1)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--backend", default="auto", help="NUTS back end: auto, pymc, nutpie, numpyro")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    draws, tune, chains = (100, 100, 2) if args.quick else (args.draws, args.tune, 4)
    if args.quick:
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
    idata = fit_sparse_gmm(
        load_galaxies(),
        args.max_components,
        concentration=args.concentration,
        draws=draws,
        tune=tune,
        chains=chains,
        target_accept=0.9,
        backend=args.backend,
        random_seed=args.seed,
    )
    attrs = idata.attrs
    print(
        f"{args.max_components} components, Dirichlet({args.concentration}), {chains} chains x {draws} draws "
        f"({attrs['backend']}): sampling {attrs['sampling_time_s']:.0f} s, "
        f"R-hat of n_clusters {attrs.get('n_clusters_rhat', float('nan')):.3f}, "
        f"divergences {attrs.get('n_divergences', 0)}"
    )
    print("posterior over the number of non-empty components:")
    print(n_clusters_distribution(idata).round(3).to_string())


if __name__ == "__main__":
    main()
