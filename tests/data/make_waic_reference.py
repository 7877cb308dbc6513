"""Write ``waic_reference.npz``: WAIC reference values from the old ArviZ implementation.

ArviZ 1 removed ``arviz.waic``, so ``tests/test_waic.py`` checks our NumPy WAIC against values stored here
instead of calling ArviZ. This script is run once by hand, NOT by the tests, in an environment with
``arviz<0.24`` (the stored file was made with ArviZ 0.23.4, NumPy 2.4.6, SciPy 1.17.1, xarray 2026.9.0 on
Python 3.11)::

    python -m venv /tmp/az023 && /tmp/az023/bin/pip install "arviz<0.24"
    /tmp/az023/bin/python tests/data/make_waic_reference.py

For every case it stores, in one compressed file next to this script, the input array itself (so the tests
do not depend on random-number streams) and the outputs of ``az.waic(idata, pointwise=True, scale="log")``:

- ``<case>__log_lik``: the pointwise log-likelihood, (chain, draw, obs) or (sample, obs);
- ``<case>__elpd_waic``, ``<case>__se``, ``<case>__p_waic``: scalars;
- ``<case>__waic_i``: the pointwise ``elpd_waic_i``, shape (obs,);
- ``<case>__warning``: ArviZ's flag for a pointwise variance above 0.4;
- ``<case>__n_samples``, ``<case>__n_data_points``: integers;

plus ``cases`` (the case names) and ``arviz_version``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from scipy import stats

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)  # ArviZ 0.2x announces its refactor on import
    import arviz as az

OUTPUT = Path(__file__).with_name("waic_reference.npz")


def _gaussian_model_log_lik(rng: np.random.Generator, n_chains: int, n_draws: int) -> np.ndarray:
    """Pointwise log-likelihood of a normal model with unknown mean and scale, from its exact posterior."""
    y = rng.normal(1.5, 2.0, size=60)
    y[:3] += 9.0  # a few outliers give large pointwise variances (and the ArviZ warning)
    n = y.size
    # Posterior under the reference prior: sigma^2 ~ Inv-chi2(n - 1, s^2); mu | sigma ~ N(ybar, sigma^2 / n).
    s2 = y.var(ddof=1)
    sigma2 = (n - 1) * s2 / rng.chisquare(n - 1, size=(n_chains, n_draws))
    mu = rng.normal(y.mean(), np.sqrt(sigma2 / n))
    return stats.norm.logpdf(y, loc=mu[..., None], scale=np.sqrt(sigma2)[..., None])


def _cases() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20240601)
    return {
        # Random (chain, draw, obs), with an observation-specific offset.
        "random_3d": rng.normal(-1.0, 0.5, size=(3, 100, 20)) + rng.normal(0.0, 2.0, size=20),
        # 2-D (sample, obs); ArviZ gets it as a single chain.
        "random_2d": rng.normal(-2.0, 0.3, size=(200, 30)),
        # A real model's log-likelihood with outliers, so that ArviZ's variance warning fires.
        "gaussian_model": _gaussian_model_log_lik(rng, n_chains=4, n_draws=100),
        # exp(-2000) underflows: the log-sum-exp must not.
        "large_magnitude": -2000.0 + rng.normal(0.0, 0.1, size=(1, 100, 5)),
    }


def _arviz_waic(log_lik: np.ndarray):
    """``az.waic`` on a (chain, draw, obs) or (sample, obs) array; returns the ELPDData and the warning flag."""
    log_lik_3d = log_lik if log_lik.ndim == 3 else log_lik[None]
    n_chains, n_draws = log_lik_3d.shape[:2]
    idata = az.from_dict(
        posterior={"mu": np.zeros((n_chains, n_draws))},
        log_likelihood={"y": log_lik_3d},
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = az.waic(idata, pointwise=True, scale="log")
    issued = any("posterior variance of the log predictive" in str(w.message) for w in caught)
    if issued != bool(result["warning"]):
        raise RuntimeError("ArviZ's warning flag and its issued warning disagree")
    return result


def main() -> None:
    arrays: dict[str, np.ndarray] = {}
    cases = _cases()
    for name, log_lik in cases.items():
        ref = _arviz_waic(log_lik)
        arrays[f"{name}__log_lik"] = log_lik
        arrays[f"{name}__elpd_waic"] = np.float64(ref["elpd_waic"])
        arrays[f"{name}__se"] = np.float64(ref["se"])
        arrays[f"{name}__p_waic"] = np.float64(ref["p_waic"])
        arrays[f"{name}__waic_i"] = np.asarray(ref["waic_i"], dtype=np.float64)
        arrays[f"{name}__warning"] = np.bool_(ref["warning"])
        arrays[f"{name}__n_samples"] = np.int64(ref["n_samples"])
        arrays[f"{name}__n_data_points"] = np.int64(ref["n_data_points"])
        print(
            f"{name:16s} shape={log_lik.shape} elpd_waic={ref['elpd_waic']:.6f} se={ref['se']:.6f} "
            f"p_waic={ref['p_waic']:.6f} warning={bool(ref['warning'])}"
        )
    arrays["cases"] = np.array(list(cases))
    arrays["arviz_version"] = np.array(az.__version__)
    np.savez_compressed(OUTPUT, **arrays)
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size} bytes) with ArviZ {az.__version__}")


if __name__ == "__main__":
    main()
