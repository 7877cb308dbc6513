"""M-steps of mclust's covariance models against reference values from R's mclust.

The fixtures in tests/data/mclust/ were written by make_mclust_reference.R (R 4.2.2, mclust 6.0.0); see the
README there.  Every fit holds three sets of parameters:

* "fit":   ``Mclust(data, G, modelNames = m)`` with mclust's defaults.  Its EM stops at a relative
           log-likelihood change of 1e-5, which leaves the parameters up to ~1e-2 (relative) away from the
           EM fixed point, so it is only checked loosely as a fixed point.
* "tight": ``me()`` restarted from that fit with tolerance 1e-13: a fixed point of the M-step up to the
           ~1e-6 that EM's linear convergence leaves at that tolerance (observed <= 1.5e-6).
* "mstep": mclust's ``mstep()`` applied to the responsibilities of the "fit" parameters: a direct reference
           for our M-step on the same input.
"""

from __future__ import annotations

import functools
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from bayes_gmm.covariance._mclust_msteps import (
    MCLUST_MODELS,
    ONE_D_MODELS,
    mclust_covariances,
    n_covariance_parameters,
)

DATA = Path(__file__).parent / "data" / "mclust"
DATASETS = ("faithful", "iris", "diabetes", "acidity")

# Models whose M-step is exact in both codes (closed form, or VEI/VEV whose inner iterations both codes run
# to machine precision): agreement with mclust's mstep() to rounding error.
EXACT = ("EII", "VII", "EEI", "EVI", "VVI", "EEE", "EEV", "EVV", "VVV", "VEI", "VEV", "E", "V")
# mclust stops the inner iterations of VEE and EVE when the relative change of the objective is below
# tol = 1e-13 (the fixture's setting); the objective is flat (quadratic) near its optimum and the MM
# iterations of EVE converge linearly, so mclust's covariances are only accurate to ~1e-6 (observed <= 1e-6).
INNER_TOL_MODELS = ("VEE", "EVE")
RTOL_EXACT = 1e-9
RTOL_INNER = 1e-5
# the "tight" EM's stopping rule leaves ~1e-6 (see module docstring)
RTOL_FIXED_POINT = 1e-5
# mclust's default EM (relative logL change 1e-5) leaves up to 1.2e-2 (diabetes EVV, G = 4)
RTOL_DEFAULT_FIT = 2.5e-2


# ------------------------------------------------------------------------------------------------------
# fixtures and helpers
# ------------------------------------------------------------------------------------------------------


@functools.cache
def _load(name: str):
    ref = json.loads((DATA / f"mclust_fits_{name}.json").read_text())
    x = np.loadtxt(DATA.parent / ref["csv"], delimiter=",", skiprows=1, ndmin=2)
    assert x.shape == (ref["n"], ref["d"])
    return ref, x


def _fits(name: str, model: str | None = None):
    ref, _ = _load(name)
    return [f for f in ref["fits"] if model is None or f["model"] == model]


def _params(p):
    return np.asarray(p["pro"], float), np.asarray(p["mean"], float), np.asarray(p["sigma"], float)


def _log_weighted_densities(x, pro, mean, sigma):
    """(K, N): log pro_k + log N(x_i | mean_k, sigma_k)."""
    d = x.shape[1]
    chol = np.linalg.cholesky(sigma)
    diff = x[None, :, :] - mean[:, None, :]  # (K, N, D)
    sol = np.linalg.solve(chol, np.swapaxes(diff, 1, 2))  # (K, D, N)
    maha = np.sum(sol**2, axis=1)
    logdet = 2.0 * np.sum(np.log(np.diagonal(chol, axis1=1, axis2=2)), axis=1)
    return np.log(pro)[:, None] - 0.5 * (d * np.log(2 * np.pi) + logdet[:, None] + maha)


def _e_step(x, params):
    """Responsibilities (N, K) and the log-likelihood of the parameters."""
    ld = _log_weighted_densities(x, *_params(params))
    top = ld.max(axis=0)
    log_norm = top + np.log(np.exp(ld - top).sum(axis=0))
    return np.exp(ld - log_norm).T, float(log_norm.sum())


def _m_step_stats(x, resp):
    nk = resp.sum(axis=0)
    mean = resp.T @ x / nk[:, None]
    diff = x[None, :, :] - mean[:, None, :]
    scatter = np.einsum("nk,kna,knb->kab", resp, diff, diff) / nk[:, None, None]
    return nk, mean, scatter


def _objective(scatter, nk, cov):
    """M-step objective -1/2 sum_k [n_k log|Sigma_k| + tr(W_k Sigma_k^-1)]."""
    logdet = np.linalg.slogdet(cov)[1]
    tr = np.einsum("kij,kji->k", nk[:, None, None] * scatter, np.linalg.inv(cov))
    return -0.5 * float(np.sum(nk * logdet + tr))


def _assert_cov_close(actual, desired, rtol, msg=""):
    """Entries compared relative to the largest entry of each component's covariance (off-diagonal
    entries can be ~0, so a per-entry relative tolerance would be meaningless)."""
    scale = np.max(np.abs(desired), axis=(1, 2), keepdims=True)
    err = np.max(np.abs(actual - desired) / scale)
    assert err <= rtol, f"{msg}: max relative error {err:.2e} > {rtol:.0e}"


def _cases(models=None, exclude=()):
    out = []
    for name in DATASETS:
        ref, _ = _load(name)
        for m in ref["models"]:
            if (models is None or m in models) and m not in exclude:
                out.append(pytest.param(name, m, id=f"{name}-{m}"))
    return out


# ------------------------------------------------------------------------------------------------------
# number of parameters
# ------------------------------------------------------------------------------------------------------


def test_number_of_parameters_matches_nMclustParams():
    table = json.loads((DATA / "mclust_nparams.json").read_text())["table"]
    checked = 0
    for row in table:
        model, d, k, expected = row["model"], row["d"], row["G"], row["nparams"]
        assert expected is not None, row
        if model in ONE_D_MODELS and d > 1:
            # mclust counts E/V in d > 1 like EII/VII; ours are one-dimensional models only
            with pytest.raises(ValueError):
                n_covariance_parameters(model, k, d)
            continue
        assert (k - 1) + k * d + n_covariance_parameters(model, k, d) == expected, row
        checked += 1
    assert checked == 14 * 6 * 9 + 2 * 9


@pytest.mark.parametrize("name", DATASETS)
def test_fixture_df_and_bic(name):
    ref, _ = _load(name)
    n, d = ref["n"], ref["d"]
    for f in ref["fits"]:
        k, fit = f["G"], f["fit"]
        assert f["status"] == "ok"
        assert fit["df"] == (k - 1) + k * d + n_covariance_parameters(f["model"], k, d)
        assert fit["bic"] == pytest.approx(2 * fit["loglik"] - fit["df"] * np.log(n), rel=1e-12)
        table_bic = ref["mclustBIC"]["table"][f["model"]][k - 1]
        assert table_bic == pytest.approx(fit["bic"], rel=1e-9)


@pytest.mark.parametrize("name", DATASETS)
def test_fixture_top3_is_best_bic(name):
    ref, _ = _load(name)
    flat = sorted(
        (
            (b, m, i + 1)
            for m, bics in ref["mclustBIC"]["table"].items()
            for i, b in enumerate(bics)
            if b is not None
        ),
        reverse=True,
    )
    top = [(t["model"], t["G"]) for t in ref["mclustBIC"]["top3"]]
    assert top == [(m, g) for _, m, g in flat[:3]]


# ------------------------------------------------------------------------------------------------------
# the fixtures' own consistency: log-likelihood of the stored parameters
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DATASETS)
def test_fixture_loglik(name):
    _, x = _load(name)
    for f in _fits(name):
        tag = f"{name} {f['model']} G={f['G']}"
        # the tight fit: loglik of exactly the stored parameters
        _, ll = _e_step(x, f["tight"])
        assert ll == pytest.approx(f["tight"]["loglik"], rel=1e-9), tag
        # mclust's older Fortran EM routines report the log-likelihood of the E-step *before* their last
        # M-step: within their stopping rule |dL| / (1 + |L|) < 1e-5, and below ours (EM is monotone).
        _, ll = _e_step(x, f["fit"])
        reported = f["fit"]["loglik"]
        assert abs(ll - reported) / (1 + abs(ll)) < 1e-5, tag
        if f["model"] != "VVE":  # mclust's VVE M-step is not monotone, see test_vve_*
            assert ll >= reported - 1e-9 * abs(ll), tag


# ------------------------------------------------------------------------------------------------------
# M-step against mclust
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "model"), _cases(exclude=("VVE",)))
def test_m_step_matches_mclust_mstep(name, model):
    """Our M-step on the responsibilities of mclust's fit equals mclust's mstep() on the same input."""
    _, x = _load(name)
    rtol = RTOL_EXACT if model in EXACT else RTOL_INNER
    for f in _fits(name, model):
        resp, _ = _e_step(x, f["fit"])
        nk, mean, scatter = _m_step_stats(x, resp)
        ref_pro, ref_mean, ref_sigma = _params(f["mstep"])
        np.testing.assert_allclose(nk / nk.sum(), ref_pro, rtol=1e-9)
        np.testing.assert_allclose(mean, ref_mean, rtol=1e-9, atol=1e-9 * np.abs(ref_mean).max())
        prev = np.asarray(f["fit"]["sigma"], float)
        cov = mclust_covariances(model, scatter, nk, previous=prev, max_iter=10_000, tol=1e-13)
        _assert_cov_close(cov, ref_sigma, rtol, f"{name} {model} G={f['G']}")
        # and never worse than mclust's M-step
        assert _objective(scatter, nk, cov) >= _objective(scatter, nk, ref_sigma) - 1e-9 * nk.sum()


@pytest.mark.parametrize(("name", "model"), _cases(exclude=("VVE",)))
def test_converged_mclust_fit_is_fixed_point(name, model):
    """E-step then our M-step from mclust's (tightly converged) solution returns that solution."""
    _, x = _load(name)
    for f in _fits(name, model):
        tag = f"{name} {model} G={f['G']}"
        pro, mean, sigma = _params(f["tight"])
        resp, _ = _e_step(x, f["tight"])
        nk, new_mean, scatter = _m_step_stats(x, resp)
        cov = mclust_covariances(model, scatter, nk, previous=sigma, max_iter=10_000, tol=1e-13)
        _assert_cov_close(cov, sigma, RTOL_FIXED_POINT, tag)
        np.testing.assert_allclose(nk / nk.sum(), pro, rtol=RTOL_FIXED_POINT, err_msg=tag)
        np.testing.assert_allclose(
            new_mean, mean, rtol=RTOL_FIXED_POINT, atol=RTOL_FIXED_POINT * np.abs(mean).max(), err_msg=tag
        )


@pytest.mark.parametrize(("name", "model"), _cases(exclude=("VVE",)))
def test_default_mclust_fit_is_near_fixed_point(name, model):
    """The same with mclust's default fit: only as close as its EM tolerance (1e-5 on logL) allows."""
    _, x = _load(name)
    for f in _fits(name, model):
        sigma = np.asarray(f["fit"]["sigma"], float)
        resp, _ = _e_step(x, f["fit"])
        nk, _, scatter = _m_step_stats(x, resp)
        cov = mclust_covariances(model, scatter, nk, previous=sigma, max_iter=10_000, tol=1e-13)
        _assert_cov_close(cov, sigma, RTOL_DEFAULT_FIT, f"{name} {model} G={f['G']}")


# ------------------------------------------------------------------------------------------------------
# VVE: mclust's orientation update leaves out the volumes, ours is the exact maximiser
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ("faithful", "iris", "diabetes"))
def test_vve_m_step_improves_on_mclust(name):
    """mclust's VVE M-step updates the common orientation with weights A_k^-1 instead of (lambda_k A_k)^-1,
    so it does not maximise the M-step objective.  Ours does: a higher objective (by 0.06 to 2.7 here),
    covariances within a few per cent of mclust's."""
    _, x = _load(name)
    for f in _fits(name, "VVE"):
        resp, _ = _e_step(x, f["fit"])
        nk, _, scatter = _m_step_stats(x, resp)
        ref_sigma = np.asarray(f["mstep"]["sigma"], float)
        cov = mclust_covariances(
            "VVE", scatter, nk, previous=np.asarray(f["fit"]["sigma"]), tol=1e-13, max_iter=10_000
        )
        gain = _objective(scatter, nk, cov) - _objective(scatter, nk, ref_sigma)
        if f["G"] == 1:
            assert abs(gain) < 1e-9 * nk.sum()
            _assert_cov_close(cov, ref_sigma, RTOL_INNER)  # one component: no volume weighting
        else:
            assert gain > 1e-3, (name, f["G"], gain)
            _assert_cov_close(cov, ref_sigma, 0.1, f"{name} VVE G={f['G']}")


@pytest.mark.parametrize("name", ("faithful", "iris", "diabetes"))
def test_vve_difference_is_mclusts_orientation_weighting(name):
    """With mclust's weighting (shapes A_k normalised to |A_k| = 1, volumes left out) in the orientation step,
    ``orientation_weights="mclust"``, our VVE M-step reproduces mclust's mstep(): the difference above is
    that weighting and nothing else."""
    _, x = _load(name)
    for f in _fits(name, "VVE"):
        resp, _ = _e_step(x, f["fit"])
        nk, _, scatter = _m_step_stats(x, resp)
        cov = mclust_covariances(
            "VVE", scatter, nk, tol=1e-14, max_iter=100_000, orientation_weights="mclust"
        )
        _assert_cov_close(cov, np.asarray(f["mstep"]["sigma"], float), RTOL_INNER, f"{name} VVE G={f['G']}")


def test_vve_m_step_is_global_maximum_in_2d():
    """In 2-D the common orientation is one angle: a grid search over it confirms the maximum."""
    _, x = _load("faithful")

    def grid_objective(scatter, nk, theta):
        # given D = [u, v], the best VVE covariances have eigenvalues b_kj = v_j^T S_k v_j
        c, s = np.cos(theta), np.sin(theta)
        s00, s01, s11 = scatter[:, None, 0, 0], scatter[:, None, 0, 1], scatter[:, None, 1, 1]
        b1 = c**2 * s00 + 2 * c * s * s01 + s**2 * s11
        b2 = s**2 * s00 - 2 * c * s * s01 + c**2 * s11
        return -0.5 * np.sum(nk[:, None] * (np.log(b1) + np.log(b2) + 2), axis=0)

    for f in _fits("faithful", "VVE"):
        resp, _ = _e_step(x, f["fit"])
        nk, _, scatter = _m_step_stats(x, resp)
        cov = mclust_covariances("VVE", scatter, nk, tol=1e-13, max_iter=10_000)
        # D and D with swapped/negated columns give the same model: angles in [0, pi/2) suffice
        theta = np.linspace(0.0, np.pi / 2, 2001)
        grid = grid_objective(scatter, nk, theta)
        best = theta[np.argmax(grid)]
        fine = grid_objective(scatter, nk, np.linspace(best - 1e-3, best + 1e-3, 20_001))
        q = _objective(scatter, nk, cov)
        assert q >= max(grid.max(), fine.max()) - 1e-9 * abs(q)
        assert q <= fine.max() + 1e-9 * abs(q)


@pytest.mark.parametrize("name", ("faithful", "iris", "diabetes"))
def test_vve_em_from_mclust_solution_increases_loglik(name):
    """EM with our VVE M-step, started at mclust's tightly converged VVE solution, never loses likelihood and
    climbs above it (mclust's own VVE EM is not monotone: see the fixtures' "tight" logliks)."""
    _, x = _load(name)
    for f in _fits(name, "VVE"):
        if f["G"] == 1:
            continue
        params = {k: f["tight"][k] for k in ("pro", "mean", "sigma")}
        resp, ll0 = _e_step(x, params)
        ll_prev = ll0
        for _ in range(5):
            nk, mean, scatter = _m_step_stats(x, resp)
            sigma = mclust_covariances(
                "VVE", scatter, nk, previous=np.asarray(params["sigma"]), max_iter=1000
            )
            params = {"pro": nk / nk.sum(), "mean": mean, "sigma": sigma}
            resp, ll = _e_step(x, params)
            assert ll >= ll_prev - 1e-9 * abs(ll_prev)
            ll_prev = ll
        assert ll_prev > ll0 + 1e-6, (name, f["G"], ll_prev - ll0)


# ------------------------------------------------------------------------------------------------------
# structure of the M-step on random input
# ------------------------------------------------------------------------------------------------------


def _random_input(rng, k=3, d=4):
    a = rng.standard_normal((k, d, d + 3))
    scatter = a @ np.swapaxes(a, 1, 2) / (d + 3) + 0.1 * np.eye(d)
    scatter *= rng.uniform(0.3, 3.0, size=(k, 1, 1))
    nk = rng.uniform(5.0, 50.0, size=k)
    return scatter, nk


def _shapes(cov):
    ev = np.linalg.eigvalsh(cov)
    return ev / np.exp(np.mean(np.log(ev), axis=1, keepdims=True))


@pytest.mark.parametrize("model", MCLUST_MODELS)
def test_structure_on_random_scatter(model):
    rng = np.random.default_rng(sum(map(ord, model)))
    scatter, nk = _random_input(rng)
    k, d, _ = scatter.shape
    cov = mclust_covariances(model, scatter, nk, tol=1e-12, max_iter=5000)
    assert cov.shape == (k, d, d)
    np.testing.assert_allclose(cov, np.swapaxes(cov, 1, 2), atol=1e-14)
    assert np.all(np.linalg.eigvalsh(cov) > 0)
    volume, shape, orientation = model
    dets = np.linalg.det(cov)
    if volume == "E":
        np.testing.assert_allclose(dets, dets[0], rtol=1e-10)
    else:
        assert np.ptp(dets) / dets.max() > 1e-3  # not accidentally constrained
    if shape == "E":
        np.testing.assert_allclose(_shapes(cov), np.broadcast_to(_shapes(cov)[0], (k, d)), rtol=1e-8)
    elif shape == "V":
        assert np.ptp(_shapes(cov), axis=0).max() > 1e-3
    if orientation == "I":
        off = cov - np.einsum("kii->ki", cov)[:, :, None] * np.eye(d)
        assert np.all(off == 0)
    elif orientation == "E":  # common eigenvectors <=> the covariances commute
        scale = np.abs(cov).max() ** 2
        for i, j in itertools.combinations(range(k), 2):
            np.testing.assert_allclose(cov[i] @ cov[j], cov[j] @ cov[i], atol=1e-8 * scale)
    if shape == "I":
        np.testing.assert_allclose(cov, np.einsum("k,ij->kij", cov[:, 0, 0], np.eye(d)), atol=1e-15)
    # the constrained maximiser never beats the unconstrained one (VVV: the scatter itself)
    assert _objective(scatter, nk, cov) <= _objective(scatter, nk, scatter) + 1e-9


# sub-model -> super-model: the super-model's M-step objective is at least as high
NESTED = [
    ("EII", "VII"), ("EII", "EEI"), ("VII", "VEI"), ("EEI", "VEI"), ("EEI", "EVI"), ("VEI", "VVI"),
    ("EVI", "VVI"), ("EEI", "EEE"), ("VEI", "VEE"), ("EVI", "EVE"), ("VVI", "VVE"), ("EEE", "VEE"),
    ("EEE", "EVE"), ("VEE", "VVE"), ("EVE", "VVE"), ("EEE", "EEV"), ("VEE", "VEV"), ("EVE", "EVV"),
    ("EEV", "VEV"), ("EEV", "EVV"), ("VEV", "VVV"), ("EVV", "VVV"), ("VVE", "VVV"),
]  # fmt: skip


@pytest.mark.parametrize("seed", range(3))
def test_nested_models_order_objective(seed):
    rng = np.random.default_rng(seed)
    scatter, nk = _random_input(rng, k=3, d=3)
    q = {
        m: _objective(scatter, nk, mclust_covariances(m, scatter, nk, tol=1e-13, max_iter=20_000))
        for m in MCLUST_MODELS
    }
    for sub, sup in NESTED:
        assert q[sub] <= q[sup] + 1e-8 * abs(q[sup]), (sub, sup, q[sub], q[sup])


@pytest.mark.parametrize("model", MCLUST_MODELS)
def test_iterative_start_does_not_matter(model):
    rng = np.random.default_rng(7)
    scatter, nk = _random_input(rng)
    cold = mclust_covariances(model, scatter, nk, tol=1e-13, max_iter=20_000)
    other = mclust_covariances(
        model, scatter, nk, previous=mclust_covariances("EEE", scatter, nk), tol=1e-13, max_iter=20_000
    )
    _assert_cov_close(other, cold, 1e-7, model)


@pytest.mark.parametrize("model", [m for m in MCLUST_MODELS if m[2] != "I"] + ["EII", "VII"])
def test_rotation_equivariance(model):
    rng = np.random.default_rng(11)
    scatter, nk = _random_input(rng)
    rot = np.linalg.qr(rng.standard_normal((4, 4)))[0]
    cov = mclust_covariances(model, scatter, nk, tol=1e-13, max_iter=20_000)
    cov_rot = mclust_covariances(model, rot @ scatter @ rot.T, nk, tol=1e-13, max_iter=20_000)
    _assert_cov_close(cov_rot, rot @ cov @ rot.T, 1e-7, model)


@pytest.mark.parametrize("model", MCLUST_MODELS)
def test_one_dimension_reduces_to_e_or_v(model):
    rng = np.random.default_rng(3)
    scatter = rng.uniform(0.5, 2.0, size=(3, 1, 1))
    nk = np.array([10.0, 20.0, 5.0])
    one_d = "E" if model[0] == "E" else "V"
    np.testing.assert_allclose(
        mclust_covariances(model, scatter, nk, tol=1e-14, max_iter=1000),
        mclust_covariances(one_d, scatter, nk),
        rtol=1e-12,
    )
    assert n_covariance_parameters(model, 3, 1) == n_covariance_parameters(one_d, 3, 1)


def test_one_d_models():
    scatter = np.array([[[1.0]], [[4.0]]])
    nk = np.array([10.0, 30.0])
    np.testing.assert_allclose(mclust_covariances("V", scatter, nk), scatter)
    np.testing.assert_allclose(mclust_covariances("E", scatter, nk), np.full((2, 1, 1), 3.25))


def test_reg_covar_is_added_to_the_diagonal():
    rng = np.random.default_rng(5)
    scatter, nk = _random_input(rng)
    for model in ("EVI", "VEE", "VVV"):
        np.testing.assert_allclose(
            mclust_covariances(model, scatter, nk, reg_covar=1e-3) - mclust_covariances(model, scatter, nk),
            np.broadcast_to(1e-3 * np.eye(4), scatter.shape),
            atol=1e-12,
        )


def test_bad_input():
    scatter, nk = _random_input(np.random.default_rng(0))
    with pytest.raises(ValueError):
        mclust_covariances("XYZ", scatter, nk)
    with pytest.raises(ValueError):
        mclust_covariances("E", scatter, nk)  # 1-D model with 4 features
    with pytest.raises(ValueError):
        mclust_covariances("VVV", scatter[:, :, :2], nk)
    with pytest.raises(ValueError):
        mclust_covariances("VVV", scatter, nk[:2])
    with pytest.raises(ValueError):
        mclust_covariances("VVV", scatter, -nk)
    with pytest.raises(ValueError):
        mclust_covariances("VEE", scatter, nk, previous=scatter[:2])
    with pytest.raises(ValueError):
        n_covariance_parameters("VVV", 0, 2)
