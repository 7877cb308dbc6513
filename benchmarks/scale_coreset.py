"""Issue 15, part 3: a Bayesian GMM at any size by NUTS on a weighted lightweight coreset.

Data: 2-D, K=3, full covariances (weights 0.5/0.3/0.2, overlapping clusters), simulated once at the largest
size; smaller sizes are its first rows. For each size in ``--sizes`` (default 1e6 and 1e7) the data go in as
a Dask array (chunks of 1e6 rows), ``fit_coreset_gmm`` draws the coreset in two passes and runs NUTS (nutpie)
on it; the wall time covers everything (coreset, weighted EM start, compilation when it is the first
weighted fit of the process, sampling, relabelling). For comparison:

    full 1e5      full-data NUTS (``fit_gmm``) on the first 1e5 rows: the posterior the coreset
                  approximates, where full-data NUTS is feasible;
    coreset 1e5   the coreset fit of those same 1e5 rows: how close it is to the full-data posterior;
    EM 1e7        ``fit_em`` on all rows of the largest size (in memory, one k-means start).

The table lists posterior means (and SDs) of the weights, means and covariances, components matched to
the simulation's by their means, and the distances between fits in data SDs and in posterior SDs.
Goal: coreset NUTS at 1e7 in <= 2 min on 2 cores.

Run: python benchmarks/scale_coreset.py [--sizes 1e6,1e7] [--coreset-size 10000] [--full-n 1e5]
     [--draws 1000] [--tune 1000] [--full-draws 500] [--full-tune 500] [--chains 2] [--json out.json]
Also run by ``python benchmarks/scale.py --part 3``, which calls :func:`run_part3`.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np

TRUE_WEIGHTS = np.array([0.5, 0.3, 0.2])
TRUE_MEANS = np.array([[0.0, 0.0], [4.0, 1.0], [-1.0, 4.0]])
_FACTORS = np.array([[[1.0, 0.0], [0.5, 0.7]], [[0.6, 0.0], [-0.3, 1.2]], [[0.8, 0.0], [0.0, 0.4]]])
TRUE_COVS = _FACTORS @ np.swapaxes(_FACTORS, -1, -2)
CHUNK_ROWS = 1_000_000


def add_part3_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of part 3 (also used by ``benchmarks/scale.py``)."""
    parser.add_argument("--sizes", default="1e6,1e7", help="data sizes for the coreset fits")
    parser.add_argument(
        "--coreset-size", type=int, default=None, help="coreset draws m (default: the package's)"
    )
    parser.add_argument("--full-n", type=float, default=1e5, help="rows for the full-data NUTS comparison")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--full-draws", type=int, default=500)
    parser.add_argument("--full-tune", type=int, default=500)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="write the results to this JSON file")


def simulate(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = rng.choice(3, n, p=TRUE_WEIGHTS)
    X = np.empty((n, 2))
    for k in range(3):  # in blocks per component: no (n, 2, 2) temporary
        rows = np.flatnonzero(z == k)
        X[rows] = TRUE_MEANS[k] + rng.standard_normal((rows.size, 2)) @ _FACTORS[k].T
    return X


def _summary(name: str, fit=None, em=None, **extra) -> dict:
    """Posterior mean and SD (or EM's estimate) per parameter, components in the simulation's order."""
    if fit is not None:
        post = fit.posterior
        draws = {
            v: post[v].stack(s=("chain", "draw")).transpose("s", ...).to_numpy()
            for v in ("weights", "means", "covariances")
        }
    else:
        draws = {
            "weights": np.asarray(em.weights)[None],
            "means": np.asarray(em.means)[None],
            "covariances": em.full_covariances()[None],
        }
    order = [int(np.argmin(((draws["means"].mean(axis=0) - m) ** 2).sum(axis=1))) for m in TRUE_MEANS]
    row = {"name": name, **extra}
    for v, values in draws.items():
        values = values[:, order]
        row[f"{v}_mean"] = values.mean(axis=0).tolist()
        row[f"{v}_sd"] = values.std(axis=0).tolist() if fit is not None else None
    if fit is not None:
        row.update(
            {
                k: fit.attrs.get(k)
                for k in ("rhat_max", "ess_bulk_min", "n_divergences", "compile_time_s", "sampling_time_s")
            }
        )
    return row


def _flat(row: dict, key: str) -> np.ndarray:
    return np.concatenate([np.ravel(row[f"{v}_{key}"]) for v in ("weights", "means", "covariances")])


def _distance(a: dict, b: dict, data_sd: float) -> dict:
    """Largest difference of posterior means, in data SDs and in b's posterior SDs; ratio of SDs."""
    diff = np.abs(_flat(a, "mean") - _flat(b, "mean"))
    out = {"max_diff_data_sd": float(diff.max() / data_sd)}
    if b.get("weights_sd") is not None:
        sd_b = _flat(b, "sd")
        out["max_diff_posterior_sd"] = float(np.max(diff / sd_b))
        if a.get("weights_sd") is not None:
            ratio = _flat(a, "sd") / sd_b
            out["sd_ratio_range"] = [float(ratio.min()), float(ratio.max())]
    return out


def run_part3(args) -> dict:
    """Run part 3 with the options of :func:`add_part3_arguments` (an argparse Namespace); print and return."""
    import dask.array as da

    from bayes_gmm.em_baseline import fit_em
    from bayes_gmm.inference import DEFAULT_CORESET_SIZE, fit_coreset_gmm, fit_gmm

    sizes = [int(float(s)) for s in str(getattr(args, "sizes", "1e6,1e7")).split(",")]
    m = getattr(args, "coreset_size", None) or DEFAULT_CORESET_SIZE
    full_n = int(float(getattr(args, "full_n", 1e5)))
    chains, seed = getattr(args, "chains", 2), getattr(args, "seed", 0)
    sampling = {
        "draws": getattr(args, "draws", 1000),
        "tune": getattr(args, "tune", 1000),
        "chains": chains,
        "cores": chains,
    }
    full_sampling = {
        **sampling,
        "draws": getattr(args, "full_draws", 500),
        "tune": getattr(args, "full_tune", 500),
    }
    started = time.perf_counter()
    X = simulate(max([*sizes, full_n]), seed)
    print(
        f"simulated {X.shape[0]:,} x 2 in {time.perf_counter() - started:.1f} s; coreset size m = {m:,}; "
        f"NUTS {chains} chains x ({sampling['tune']} tune + {sampling['draws']} draws), full-data "
        f"{full_sampling['tune']} + {full_sampling['draws']}",
        flush=True,
    )
    data_sd = float(X[:full_n].std(axis=0).mean())
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the full fit's "log-likelihood not stored" notice
        t = time.perf_counter()
        full = fit_gmm(X[:full_n], 3, random_seed=seed, **full_sampling)
        rows.append(_summary(f"full NUTS {full_n:.0e}", full, wall_s=time.perf_counter() - t, n=full_n))
        print(f"  full-data NUTS at {full_n:,}: {rows[-1]['wall_s']:.1f} s", flush=True)
        for n in [full_n, *sizes]:
            t = time.perf_counter()
            fit = fit_coreset_gmm(
                da.from_array(X[:n], chunks=(CHUNK_ROWS, 2)), 3, coreset_size=m, random_seed=seed, **sampling
            )
            rows.append(
                _summary(
                    f"coreset {n:.0e}",
                    fit,
                    wall_s=time.perf_counter() - t,
                    n=n,
                    coreset_size=fit.attrs["coreset_size"],
                )
            )
            print(
                f"  coreset NUTS at {n:,}: {rows[-1]['wall_s']:.1f} s (compile {rows[-1]['compile_time_s']:.1f} s, "
                f"sampling+compile {rows[-1]['sampling_time_s']:.1f} s, R-hat {rows[-1]['rhat_max']:.3f})",
                flush=True,
            )
    n_em = max(sizes)
    t = time.perf_counter()
    em = fit_em(X[:n_em], 3, n_init=1, random_seed=seed)  # one start: each restart is a full-data EM
    rows.append(_summary(f"EM {n_em:.0e}", em=em, wall_s=time.perf_counter() - t, n=n_em))
    print(f"  EM at {n_em:,}: {rows[-1]['wall_s']:.1f} s", flush=True)
    truth = {
        "weights_mean": TRUE_WEIGHTS.tolist(),
        "means_mean": TRUE_MEANS.tolist(),
        "covariances_mean": TRUE_COVS.tolist(),
        "weights_sd": None,
    }
    by_name = {r["name"]: r for r in rows}
    comparisons = {
        f"coreset {full_n:.0e} vs full NUTS {full_n:.0e}": _distance(
            by_name[f"coreset {full_n:.0e}"], by_name[f"full NUTS {full_n:.0e}"], data_sd
        ),
        **{
            f"coreset {n:.0e} vs EM {n_em:.0e}": _distance(
                by_name[f"coreset {n:.0e}"], by_name[f"EM {n_em:.0e}"], data_sd
            )
            for n in sizes
        },
        **{f"{r['name']} vs truth": _distance(r, truth, data_sd) for r in rows},
    }
    _print_table(rows)
    print("\ndistances (largest over all parameters of |difference of posterior means|):")
    for name, value in comparisons.items():
        print(
            f"  {name}: "
            + ", ".join(
                f"{k} {v if isinstance(v, float) is False else round(v, 3)}" for k, v in value.items()
            )
        )
    result = {
        "rows": rows,
        "comparisons": comparisons,
        "coreset_size": m,
        "sampling": sampling,
        "full_sampling": full_sampling,
    }
    path = getattr(args, "json", None)
    if path:
        with open(path, "w") as handle:
            json.dump(result, handle, indent=1, default=float)
    return result


def _print_table(rows: list[dict]) -> None:
    labels = [f"w{k}" for k in range(3)] + [f"mu{k}[{d}]" for k in range(3) for d in range(2)]
    labels += [f"S{k}[{i}{j}]" for k in range(3) for i in range(2) for j in range(2)]
    keep = [i for i, lab in enumerate(labels) if not lab.endswith("[10]")]  # covariance symmetric
    print("\nposterior mean (SD), components in the simulation's order")
    print(f"{'':10s}" + "".join(f"{r['name']:>24s}" for r in rows) + f"{'truth':>10s}")
    truth = np.concatenate([TRUE_WEIGHTS, TRUE_MEANS.ravel(), TRUE_COVS.ravel()])
    for i in keep:
        cells = []
        for r in rows:
            mean = _flat(r, "mean")[i]
            cells.append(
                f"{mean:10.4f} ({_flat(r, 'sd')[i]:.4f})"
                if r.get("weights_sd") is not None
                else f"{mean:10.4f}{'':9s}"
            )
        print(f"{labels[i]:10s}" + "".join(f"{c:>24s}" for c in cells) + f"{truth[i]:10.4f}")
    print(f"{'wall s':10s}" + "".join(f"{r['wall_s']:24.1f}" for r in rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_part3_arguments(parser)
    run_part3(parser.parse_args())
