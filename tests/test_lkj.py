"""The batched LKJ covariance prior is a normalised density: numerical integration and PyMC's LKJ.

Our variable is the packed Cholesky factor L of Sigma = diag(s) C diag(s), s**2 ~ InverseGamma(shape, scale),
C ~ LKJ(eta). The LKJ density of C (with respect to its off-diagonal entries r_ij, i > j) is recovered from
our log-density by the change of variables (s, r) -> L:

    log p_LKJ(C) = log p(L) + log |dL / d(s, r)| - sum_i log p(s_i),

with |dL / d(s, r)| = |dSigma / d(s, r)| / |dSigma / dL| = prod_i s_i^D / prod_i L_ii^(D - i + 1)
(i one-based; dSigma_ii / ds_i = 2 s_i, dSigma_ij / dr_ij = s_i s_j, and |dSigma / dL| = 2^D prod L_ii^(D-i+1)).
A test below checks that Jacobian against finite differences.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytest
from scipy import stats

from bayes_gmm.models._lkj import lkj_cholesky_cov, lkj_log_normalizer

ETAS = (0.7, 1.0, 2.0)
#: Inverse-gamma shape and scales of the variances, and the standard deviations the densities are taken at
#: (first n).
VARIANCE_SHAPE = 1.5
VARIANCE_SCALE = np.array([1.5, 0.4, 2.0, 0.9])
SD = np.array([0.8, 0.9, 1.7, 0.3])


def _sd_log_density(sd, shape, scale):
    """SciPy's density of standard deviations whose squares are InverseGamma(shape, scale): log(2 sd) Jacobian."""
    return stats.invgamma(shape, scale=scale).logpdf(np.square(sd)) + np.log(2.0 * sd)


def _correlation_cholesky(corr_offdiag, n):
    """Cholesky factors (M, n, n) of correlation matrices given by their r_ij, i > j (row-major)."""
    corr = np.broadcast_to(np.eye(n), (len(corr_offdiag), n, n)).copy()
    rows, cols = np.tril_indices(n, -1)
    corr[:, rows, cols] = corr_offdiag
    corr[:, cols, rows] = corr_offdiag
    return np.linalg.cholesky(corr)


def _our_correlation_log_density(corr_chol, n, eta):
    """log p_LKJ(C) taken out of our packed-covariance log-density (see the module docstring)."""
    sd, variance_scale = SD[:n], VARIANCE_SCALE[:n]
    cov_chol = sd[:, None] * corr_chol
    with pm.Model():
        packed = lkj_cholesky_cov(
            "chol",
            n=n,
            eta=eta,
            variance_shape=VARIANCE_SHAPE,
            variance_scale=variance_scale,
            batch_shape=(len(corr_chol),),
        )
    logp = pm.logp(packed, cov_chol[:, *np.tril_indices(n)]).eval()
    diag = np.diagonal(cov_chol, axis1=-2, axis2=-1)
    log_jacobian = n * np.sum(np.log(sd)) - np.sum((n - np.arange(n)) * np.log(diag), axis=-1)
    log_sd_density = np.sum(_sd_log_density(sd, VARIANCE_SHAPE, variance_scale))
    return logp + log_jacobian - log_sd_density


def _tanh_sinh(step=1 / 12, t_max=3.2):
    """Tanh-sinh nodes on (-1, 1), their weights and 1 - |node| (exact near the ends, where 1 - x rounds)."""
    t = np.arange(-t_max, t_max + step / 2, step)
    u = 0.5 * np.pi * np.sinh(t)
    x = np.tanh(u)
    weights = step * 0.5 * np.pi * np.cosh(t) / np.cosh(u) ** 2
    one_minus_abs = 2.0 / (np.exp(2.0 * np.abs(u)) + 1.0)
    return x, weights, one_minus_abs


def _integrate_lkj_density(n, eta):
    """Integral of our LKJ density over the n x n correlation matrices (n = 2, 3), by tanh-sinh quadrature.

    The rule handles the integrable singularities of eta < 1 at the boundary det(C) = 0. For n = 3 the
    region is r12, r13 in (-1, 1) and r23 = r12 r13 + t sqrt((1 - r12^2)(1 - r13^2)), t in (-1, 1); the
    Cholesky factor is built from (r12, r13, t) directly so that it stays accurate next to that boundary.
    """
    x, w, one_minus_abs = _tanh_sinh()
    if n == 2:
        chol = np.zeros((len(x), 2, 2))
        chol[:, 0, 0] = 1.0
        chol[:, 1, 0] = x
        chol[:, 1, 1] = np.sqrt(one_minus_abs * (2.0 - one_minus_abs))  # sqrt(1 - r^2)
        return np.sum(w * np.exp(_our_correlation_log_density(chol, 2, eta)))
    r12, r13, t = (a.ravel() for a in np.meshgrid(x, x, x, indexing="ij"))
    c12, c13, ct = (
        np.sqrt(a * (2.0 - a)).ravel()
        for a in np.meshgrid(one_minus_abs, one_minus_abs, one_minus_abs, indexing="ij")
    )
    weight = np.einsum("i,j,k->ijk", w, w, w).ravel() * c12 * c13  # dr23 = sqrt((1-r12^2)(1-r13^2)) dt
    chol = np.zeros((len(r12), 3, 3))
    chol[:, 0, 0] = 1.0
    chol[:, 1, 0], chol[:, 1, 1] = r12, c12
    chol[:, 2, 0], chol[:, 2, 1], chol[:, 2, 2] = r13, t * c13, c13 * ct
    return np.sum(weight * np.exp(_our_correlation_log_density(chol, 3, eta)))


@pytest.mark.parametrize("eta", ETAS)
@pytest.mark.parametrize("n", [2, 3])
def test_lkj_density_integrates_to_one_over_correlation_matrices(n, eta):
    # The rule is accurate to ~1e-12 here (measured); 1e-6 leaves room and still catches any wrong constant.
    assert _integrate_lkj_density(n, eta) == pytest.approx(1.0, abs=1e-6)


def test_lkj_density_n2_eta2_is_three_quarters_one_minus_r_squared():
    # LKJ(2) for n = 2: p(r) = (1 - r^2) / int_{-1}^{1} (1 - r^2) dr = 3/4 (1 - r^2).
    r = np.array([0.0, 0.5, -0.9])
    corr_chol = _correlation_cholesky(r[:, None], 2)
    np.testing.assert_allclose(
        _our_correlation_log_density(corr_chol, 2, 2.0), np.log(0.75 * (1 - r**2)), rtol=1e-12
    )


@pytest.mark.parametrize("eta", [*ETAS, 5.0])
@pytest.mark.parametrize("n", [2, 3, 4])
def test_lkj_correlation_density_matches_pymc_lkjcorr(n, eta):
    # PyMC's LKJCorr is a density of the correlation Cholesky factor; with respect to the entries r_ij it
    # differs by |dC / dL| = prod_j L_jj^(n - j) (j one-based), the term PyMC's own logp adds.
    rng = np.random.default_rng(n)
    corr_chol = np.array([np.linalg.cholesky(np.corrcoef(rng.normal(size=(n, n + 3)))) for _ in range(3)])
    pymc_dist = pm.LKJCorr.dist(n=n, eta=eta)
    pymc_logp = np.array([pm.logp(pymc_dist, c).eval() for c in corr_chol])
    log_diag = np.log(np.diagonal(corr_chol, axis1=-2, axis2=-1))
    expected = pymc_logp - np.sum((n - 1 - np.arange(n)) * log_diag, axis=-1)
    np.testing.assert_allclose(_our_correlation_log_density(corr_chol, n, eta), expected, rtol=1e-10)


@pytest.mark.parametrize("eta", [*ETAS, 5.0])
@pytest.mark.parametrize("n", [2, 3, 4, 6])
def test_lkj_log_normalizer_matches_pymc_lkjcorr_at_the_identity(n, eta):
    # At C = I the LKJ density is 1 / Z (det = 1, and the Cholesky Jacobian is 1): covers the eta == 1 branch.
    assert -lkj_log_normalizer(eta, n) == pytest.approx(
        pm.logp(pm.LKJCorr.dist(n=n, eta=eta), np.eye(n)).eval()
    )


@pytest.mark.parametrize("eta", ETAS)
def test_lkj_log_normalizer_is_the_log_integral_of_the_determinant_power(eta):
    # n = 2: Z = int_{-1}^{1} (1 - r^2)^(eta - 1) dr, by adaptive quadrature with the algebraic end-point weight.
    from scipy.integrate import quad

    integral, _ = quad(lambda r: 1.0, -1.0, 1.0, weight="alg", wvar=(eta - 1.0, eta - 1.0))
    assert lkj_log_normalizer(eta, 2) == pytest.approx(np.log(integral), rel=1e-10)


def test_change_of_variables_jacobian_matches_finite_differences():
    # The Jacobian used to take the LKJ density out of ours, against central differences of (s, r) -> L.
    n = 3
    rows, cols = np.tril_indices(n)
    sd, r = SD[:n], np.array([0.3, -0.2, 0.5])

    def packed(params):
        corr_chol = _correlation_cholesky(params[None, n:], n)[0]
        return (params[:n, None] * corr_chol)[rows, cols]

    params = np.concatenate([sd, r])
    step = 1e-6
    jac = np.column_stack(
        [(packed(params + step * e) - packed(params - step * e)) / (2 * step) for e in np.eye(6)]
    )
    diag = np.diagonal(sd[:, None] * _correlation_cholesky(r[None], n)[0])
    expected = n * np.sum(np.log(sd)) - np.sum((n - np.arange(n)) * np.log(diag))
    assert np.log(abs(np.linalg.det(jac))) == pytest.approx(expected, rel=1e-7)


def test_full_density_matches_pymc_lkjcholeskycov():
    # One full check of the packed covariance factor's density against PyMC's, whose sd prior is a
    # HalfNormal: swap that prior's density for SciPy's inverse-gamma one.
    n, eta = 3, 0.7
    corr_chol = _correlation_cholesky(np.array([[0.3, -0.2, 0.5]]), n)
    value = (SD[:n, None] * corr_chol[0])[np.tril_indices(n)]
    with pm.Model():
        ours = lkj_cholesky_cov(
            "chol", n=n, eta=eta, variance_shape=VARIANCE_SHAPE, variance_scale=VARIANCE_SCALE[:n]
        )
    reference = pm.LKJCholeskyCov.dist(n=n, eta=eta, sd_dist=pm.HalfNormal.dist(1.0), compute_corr=False)
    expected = (
        pm.logp(reference, value).eval()
        - np.sum(stats.halfnorm.logpdf(SD[:n]))
        + np.sum(_sd_log_density(SD[:n], VARIANCE_SHAPE, VARIANCE_SCALE[:n]))
    )
    assert pm.logp(ours, value).eval() == pytest.approx(expected, rel=1e-12)
