"""The fused likelihood's numba kernels with a mixture weight that has underflowed to exactly 0."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from bayes_gmm.models._fused import (
    cholesky_mixture_logp,
    cholesky_mixture_logp_grad,
    diagonal_mixture_logp,
    diagonal_mixture_logp_grad,
)

WEIGHTS = np.array([0.6, 0.0, 0.4])  # the middle component's softmax weight underflowed to 0


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(12)
    x = rng.normal(size=(150, 3)) * [1.0, 2.0, 0.5]
    means = rng.normal(size=(3, 3))
    chol = np.array([np.linalg.cholesky(a @ a.T + np.eye(3)) for a in rng.normal(size=(3, 3, 3))])
    sd = rng.uniform(0.5, 2.0, (3, 3))
    return x, means, chol, sd


def _scipy_log_likelihood(x, weights, means, covariances):
    log_dens = [multivariate_normal(m, c).logpdf(x) for m, c in zip(means, covariances, strict=True)]
    return float(np.sum(logsumexp(np.array(log_dens), b=weights[:, None], axis=0)))


def _central_differences(f, value, step=1e-6):
    grad = np.zeros_like(value)
    for index in np.ndindex(value.shape):
        e = np.zeros_like(value)
        e[index] = step
        grad[index] = (f(value + e) - f(value - e)) / (2 * step)
    return grad


def _check_gradients(grads, value_fn, x, means, scale, loglik):
    grad_weights, grad_means, grad_scale = grads
    for grad in grads:
        assert np.all(np.isfinite(grad))
    # The zero-weight component does not enter the likelihood: its mean and scale gradients are exactly 0.
    assert np.all(grad_means[1] == 0.0) and np.all(grad_scale[1] == 0.0)
    np.testing.assert_allclose(value_fn(WEIGHTS).sum(), loglik(WEIGHTS, means, scale), rtol=1e-12)
    # Gradients of the SciPy log-likelihood by central differences, the weights as free coordinates (only
    # the non-zero ones: a central difference at w = 0 would step to a negative weight).
    for k in (0, 2):
        e = np.zeros(3)
        e[k] = 1e-6
        expected = (loglik(WEIGHTS + e, means, scale) - loglik(WEIGHTS - e, means, scale)) / 2e-6
        assert grad_weights[k] == pytest.approx(expected, rel=1e-6)
    np.testing.assert_allclose(
        grad_means, _central_differences(lambda m: loglik(WEIGHTS, m, scale), means), rtol=1e-6, atol=1e-6
    )
    np.testing.assert_allclose(
        grad_scale, _central_differences(lambda s: loglik(WEIGHTS, means, s), scale), rtol=1e-6, atol=1e-6
    )


def test_cholesky_gradient_is_finite_and_correct_with_a_zero_weight(setup):
    x, means, chol, _ = setup
    tril = np.tril(np.ones((3, 3)))

    def loglik(w, m, c):
        c = c * tril  # only the lower triangle is a parameter
        return _scipy_log_likelihood(x, w, m, c @ np.swapaxes(c, -1, -2))

    grads = cholesky_mixture_logp_grad(x, WEIGHTS, means, chol, np.ones(len(x)))
    assert np.all(np.triu(grads[2], 1) == 0.0)
    _check_gradients(grads, lambda w: cholesky_mixture_logp(x, w, means, chol), x, means, chol, loglik)


def test_diagonal_gradient_is_finite_and_correct_with_a_zero_weight(setup):
    x, means, _, sd = setup

    def loglik(w, m, s):
        return _scipy_log_likelihood(x, w, m, np.array([np.diag(v**2) for v in s]))

    grads = diagonal_mixture_logp_grad(x, WEIGHTS, means, sd, np.ones(len(x)))
    _check_gradients(grads, lambda w: diagonal_mixture_logp(x, w, means, sd), x, means, sd, loglik)
