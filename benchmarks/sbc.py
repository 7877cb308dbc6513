"""Simulation-based calibration of the Bayesian GMM sampled by nutpie (issue 12; Talts et al. 2018).

For each covariance type: R times, draw the parameters from the prior and N observations from the model
(PyMC's own prior predictive sampling), fit the model by nutpie, and rank each label-invariant quantity's
true value among L = 99 thinned posterior draws (see bayes_gmm.sbc for the quantities). If the model and
the sampler are right together, every quantity's ranks are uniform on {0, ..., L}.

Priors are explicit (bayes_gmm.sbc.SBC_PRIORS): weights ~ Dirichlet(5), means ~ Normal(0, 3),
variances ~ InverseGamma(3, 2) (mean 1), LKJ(2). By default every chain starts at the true parameters: valid in
SBC (the start does not change the stationary distribution; given the data the truth is an exact posterior
draw) but blind to poor mixing: a chain that never leaves its start would pass. ``--start prior`` starts
each chain at an independent draw from the fitting prior instead. A replication
whose smallest bulk ESS (over the quantities, all chains) is below L is fitted again with 4x the draws.

Per quantity the table gives Pearson's chi-square test of the ranks in equal bins and the simultaneous ECDF
test of Säilynoja et al. (2022); a quantity fails if either p-value is below alpha / (2 Q), a Bonferroni
correction over the 2 Q tests of the Q quantities of one covariance type (family-wise level alpha per
type). ``--prior-scale-error F`` fits a wrong model: its prior scale on the means and the standard
deviations (``--prior-error-on``) is F times the simulating prior's.

Writes to --out: per covariance type a rank-histogram figure (sbc_<type>_ranks.png), an ECDF-difference
figure with a 95% simultaneous band (sbc_<type>_ecdf.png) and the ranks with per-replication sampler
diagnostics (sbc_<type>_ranks.csv); the table for all types (sbc_table.csv).

    python benchmarks/sbc.py --out /tmp/sbc_out                          # 4 types x 200 replications
    python benchmarks/sbc.py --covariance-types diag --replications 100 --prior-scale-error 0.5
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_gmm.sbc import (
    COVARIANCE_TYPES,
    PRIOR_ERROR_TARGETS,
    SBC_PRIORS,
    START_MODES,
    SBCSettings,
    default_bins,
    plot_ecdf_differences,
    plot_rank_histograms,
    run_sbc,
    uniformity_table,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    defaults = SBCSettings()
    parser.add_argument("--replications", type=int, default=200, help="replications per covariance type")
    parser.add_argument(
        "--covariance-types", default=",".join(COVARIANCE_TYPES), help="comma-separated covariance types"
    )
    parser.add_argument("--n-samples", type=int, default=50, help="observations per simulated data set (N)")
    parser.add_argument("--components", type=int, default=2, help="mixture components (K)")
    parser.add_argument("--features", type=int, default=2, help="features (D)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="sbc_out", help="output folder for figures and CSV files")
    parser.add_argument(
        "--prior-scale-error",
        type=float,
        default=1.0,
        help="fit with the prior scale(s) times this factor (1: the right model; e.g. 0.5 or 2: wrong)",
    )
    parser.add_argument("--prior-error-on", choices=PRIOR_ERROR_TARGETS, default=defaults.prior_error_on)
    parser.add_argument("--chains", type=int, default=defaults.chains)
    parser.add_argument("--draws", type=int, default=defaults.draws, help="posterior draws per chain")
    parser.add_argument("--tune", type=int, default=defaults.tune)
    parser.add_argument(
        "--cores", type=int, default=defaults.cores, help="nutpie threads (see bayes_gmm.sbc on cores > 1)"
    )
    parser.add_argument("--ranks", type=int, default=defaults.n_ranks, help="L, thinned draws per rank")
    parser.add_argument("--start", choices=START_MODES, default=defaults.start)
    parser.add_argument("--bins", type=int, default=None, help="rank-histogram bins (default: by R)")
    parser.add_argument("--alpha", type=float, default=0.01, help="family-wise level per covariance type")
    args = parser.parse_args(argv)
    args.covariance_types = [t.strip() for t in args.covariance_types.split(",") if t.strip()]
    unknown = set(args.covariance_types) - set(COVARIANCE_TYPES)
    if unknown:
        parser.error(f"unknown covariance type(s) {sorted(unknown)}; choose from {COVARIANCE_TYPES}")
    return args


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = SBCSettings(
        n_components=args.components,
        n_features=args.features,
        n_samples=args.n_samples,
        replications=args.replications,
        priors=SBC_PRIORS,
        prior_scale_error=args.prior_scale_error,
        prior_error_on=args.prior_error_on,
        chains=args.chains,
        draws=args.draws,
        tune=args.tune,
        cores=args.cores,
        n_ranks=args.ranks,
        start=args.start,
        seed=args.seed,
    )
    bins = args.bins or default_bins(args.replications, args.ranks)
    print(
        f"SBC: K={args.components}, D={args.features}, N={args.n_samples}, R={args.replications}, L={args.ranks}, "
        f"{args.chains} chains x ({args.tune} tune + {args.draws} draws), start={args.start}, seed={args.seed}, "
        f"fitting prior scale x{args.prior_scale_error:g} ({args.prior_error_on}), {bins} bins",
        flush=True,
    )
    started = time.perf_counter()
    rows, diagnostics = [], []
    for covariance_type in args.covariance_types:
        settings = replace(base, covariance_type=covariance_type)

        def progress(done, seconds, covariance_type=covariance_type):
            if done % max(1, args.replications // 10) == 0 or done == args.replications:
                print(
                    f"  {covariance_type}: {done}/{args.replications} replications, {seconds:.0f} s",
                    flush=True,
                )

        result = run_sbc(settings, progress=progress)
        table = uniformity_table(result, alpha=args.alpha, bins=bins)
        rows.extend(table)
        plot_rank_histograms(result, out / f"sbc_{covariance_type}_ranks.png", table=table, bins=bins)
        plot_ecdf_differences(result, out / f"sbc_{covariance_type}_ecdf.png", table=table)
        frame = pd.DataFrame(result.ranks, columns=result.quantities)
        frame["min_ess_bulk"] = result.min_ess
        frame["max_rhat"] = result.max_rhat
        frame["divergences"] = result.divergences
        frame.to_csv(out / f"sbc_{covariance_type}_ranks.csv", index_label="replication")
        diagnostics.append(
            f"{covariance_type:9s} {result.seconds:7.0f} s  refits (min ESS < L) {result.refits:3d}  "
            f"min ESS {result.min_ess.min():7.0f}  reps with ESS < L after refit "
            f"{int(np.sum(result.min_ess < args.ranks)):3d}  max R-hat {result.max_rhat.max():.3f}  "
            f"reps with divergences {int(np.sum(result.divergences > 0)):3d} "
            f"(total {int(result.divergences.sum())})"
        )
    pd.DataFrame(rows).to_csv(out / "sbc_table.csv", index=False)

    print(f"\nWall time {time.perf_counter() - started:.0f} s. Sampler diagnostics per covariance type:")
    print("\n".join(diagnostics))
    print(
        f"\nUniformity of the ranks ({bins} bins; chi2 on {bins - 1} df). A quantity passes if both p-values "
        f">= alpha / (2 Q), alpha = {args.alpha:g} per covariance type (Bonferroni over its 2 Q tests)."
    )
    print(
        f"{'type':10s} {'quantity':16s} {'chi2':>8s} {'p (chi2)':>10s} {'p (ECDF)':>10s} {'level':>9s}  result"
    )
    for row in rows:
        print(
            f"{row['covariance_type']:10s} {row['quantity']:16s} {row['chi2']:8.2f} {row['p_chi2']:10.3g} "
            f"{row['p_ecdf']:10.3g} {row['level']:9.2g}  {'pass' if row['passed'] else 'FAIL'}"
        )
    failed = [f"{r['covariance_type']}:{r['quantity']}" for r in rows if not r["passed"]]
    print(f"\n{len(failed)} of {len(rows)} quantities fail" + (f": {', '.join(failed)}" if failed else "."))
    print(f"Figures and CSV files in {out}/")
    return rows


if __name__ == "__main__":
    main()
