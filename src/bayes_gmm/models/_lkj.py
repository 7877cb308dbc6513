"""A batch of LKJ-correlated covariance Cholesky factors as one PyMC variable.

PyMC 5's ``pm.LKJCholeskyCov`` has no log-density for a batch of matrices ("only implemented for vector
values"), and one variable per component would scatter a component's parameters over K names, which the
relabelling of label-switched draws then has to gather again. This module gives the same distribution
(packed lower Cholesky factor of Sigma = diag(sd) Omega diag(sd), Omega ~ LKJ(eta), sd**2 ~ InverseGamma, the
prior of :mod:`bayes_gmm.models._variance_prior`)
for an array of shape (..., D(D+1)/2), with PyMC's own ``CholeskyCovPacked`` transform.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pymc.distributions.transforms import CholeskyCovPacked
from scipy.special import gammaln

from bayes_gmm.models._variance_prior import (
    inverse_gamma_sd_logp,
    inverse_gamma_sd_mode,
    sample_inverse_gamma_sd,
)


def lkj_log_normalizer(eta: float, n: int) -> float:
    """Log of the LKJ normalising integral, ``log Z = log int det(C)^(eta - 1) dC`` over correlation matrices.

    The LKJ(eta) density of an n x n correlation matrix C is ``det(C)^(eta - 1) / Z`` (Lewandowski,
    Kurowicka & Joe 2009), so a log-density *subtracts* this value. For n = 2 and eta = 2,
    ``Z = int_{-1}^{1} (1 - r^2) dr = 4 / 3``.

    Parameters
    ----------
    eta : float
        LKJ shape parameter (> 0).
    n : int
        Matrix dimension.

    Returns
    -------
    float
        ``log Z``; 0 for n = 1.
    """
    if n == 1:
        return 0.0
    if eta == 1.0:
        result = float(np.sum(gammaln(2.0 * np.arange(1, (n - 1) // 2 + 1))))
        if n % 2 == 1:
            result += 0.25 * (n**2 - 1) * np.log(np.pi) - 0.25 * (n - 1) ** 2 * np.log(2.0)
            result -= (n - 1) * gammaln((n + 1) // 2)
        else:
            result += 0.25 * n * (n - 2) * np.log(np.pi) + 0.25 * (3 * n**2 - 4 * n) * np.log(2.0)
            result += n * gammaln(n / 2) - (n - 1) * gammaln(n)
        return result
    k = np.arange(1, n)
    return float(
        -(n - 1) * gammaln(eta + 0.5 * (n - 1))
        + np.sum(0.5 * k * np.log(np.pi) + gammaln(eta + 0.5 * (n - 1 - k)))
    )


def _diag_positions(n: int) -> np.ndarray:
    return np.cumsum(np.arange(1, n + 1)) - 1


def packed_row_index(n: int) -> np.ndarray:
    """Row of each entry of a packed (row-major ``np.tril_indices``) lower-triangular n x n matrix."""
    return np.repeat(np.arange(n), np.arange(1, n + 1))


def _row_sum_matrix(n: int) -> np.ndarray:
    """(p, n) 0/1 matrix: ``packed @ M`` sums the packed entries of each row of the lower-triangular factor."""
    return (packed_row_index(n)[:, None] == np.arange(n)).astype(np.float64)


def _diagonal_matrix(n: int) -> np.ndarray:
    """(p, n) 0/1 matrix: ``packed @ E`` picks the diagonal entries of the packed lower-triangular factor."""
    return (np.arange(n * (n + 1) // 2)[:, None] == _diag_positions(n)).astype(np.float64)


def _make_logp(n: int, eta: float):
    log_normalizer = lkj_log_normalizer(eta, n)
    lkj_power = 2.0 * eta - 3.0 + n - np.arange(n)
    # Rows and the diagonal are gathered by products with constant 0/1 matrices: a handful of graph nodes
    # (and as many in the gradient) where slices, stacks and their gradients' joins and splits were dozens,
    # which made the compiled logp-and-gradient slower and its first compile longer.
    row_sum, diagonal_of = _row_sum_matrix(n), _diagonal_matrix(n)

    def logp(value, row_scale, variance_shape):
        sd = pt.sqrt(pt.dot(pt.square(value), row_sum))  # row norms of the Cholesky factor
        diagonal = pt.dot(value, diagonal_of)
        variance_scale = pt.dot(row_scale, diagonal_of)
        log_sd = pt.log(sd)
        logp_sd = pt.sum(inverse_gamma_sd_logp(sd, variance_shape, variance_scale), axis=-1)
        log_corr_diag = pt.log(diagonal) - log_sd
        # LKJ term plus log |d(corr Cholesky, sd) / d(cov Cholesky)|, as in PyMC's LKJCholeskyCov.
        logp_lkj = pt.sum((lkj_power + 1.0) * log_corr_diag - np.arange(n) * log_sd, axis=-1)
        return logp_lkj + logp_sd - log_normalizer

    return logp


def sample_lkj_correlation_cholesky(
    rng: np.random.Generator, n: int, eta: float, size: tuple = ()
) -> np.ndarray:
    """Draw Cholesky factors of LKJ(eta) correlation matrices by the onion method (Lewandowski 2009)."""
    out = np.zeros((*size, n, n))
    out[..., 0, 0] = 1.0
    for i in range(1, n):
        y = rng.beta(i / 2.0, eta + (n - 2) / 2.0 - (i - 1) / 2.0, size=size)
        direction = rng.standard_normal((*size, i))
        direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
        out[..., i, :i] = np.sqrt(y)[..., None] * direction
        out[..., i, i] = np.sqrt(1.0 - y)
    return out


def _make_random(n: int, eta: float, batch_shape: tuple):
    rows, cols = np.tril_indices(n)
    diag = _diag_positions(n)

    def random(row_scale, variance_shape, rng=None, size=None):
        variance_scale = np.asarray(row_scale)[..., diag]
        shape = tuple(size) if size is not None else batch_shape
        corr_chol = sample_lkj_correlation_cholesky(rng, n, eta, shape)
        sd = sample_inverse_gamma_sd(rng, variance_shape, variance_scale, size=(*shape, n))
        return (sd[..., :, None] * corr_chol)[..., rows, cols]

    return random


def _make_support_point(n: int):
    diag = _diag_positions(n)

    def support_point(rv, size, row_scale, variance_shape):
        # Identity correlation, each standard deviation at its variance's prior mode.
        sd = inverse_gamma_sd_mode(variance_shape, row_scale[..., diag])
        return pt.zeros(rv.shape)[..., diag].set(pt.broadcast_to(sd, (*rv.shape[:-1], n)))

    return support_point


def lkj_cholesky_cov(
    name: str, *, n: int, eta: float, variance_shape, variance_scale, batch_shape: tuple = (), dims=None
):
    """Add a (batch of) packed LKJ covariance Cholesky factor(s) to the current PyMC model.

    Parameters
    ----------
    name : str
        Variable name.
    n : int
        Matrix dimension D.
    eta : float
        LKJ shape parameter (> 0).
    variance_shape : float or tensor
        Shape of the inverse-gamma prior on each variance (> 0).
    variance_scale : array or tensor of shape (D,)
        Scale of the inverse-gamma prior on each feature's variance (> 0).
    batch_shape : tuple, default ()
        Leading shape, e.g. ``(n_components,)``.
    dims : tuple of str, optional
        Dimension names, the last one for the packed entries.

    Returns
    -------
    TensorVariable of shape (*batch_shape, D * (D + 1) / 2)
        The packed lower-triangular Cholesky factors (row-major, as ``np.tril_indices``).
    """
    variance_scale = pt.as_tensor(variance_scale).astype("float64")  # an array or a data container
    # The signature needs a parameter with the packed length p, so the scale is passed per packed entry
    # (the scale of the row the entry lies in); the diagonal entries give back variance_scale.
    row_scale = variance_scale[packed_row_index(n)]
    return pm.CustomDist(
        name,
        row_scale,
        pt.as_tensor(variance_shape).astype("float64"),
        logp=_make_logp(n, float(eta)),
        random=_make_random(n, float(eta), tuple(batch_shape)),
        support_point=_make_support_point(n),
        signature="(p),()->(p)",
        shape=(*batch_shape, n * (n + 1) // 2),
        transform=CholeskyCovPacked(n),
        dims=dims,
    )


def unpack_cholesky(packed, n: int):
    """Expand packed lower-triangular factors (..., n(n+1)/2) into (..., n, n) matrices.

    One product with a constant 0/1 scatter matrix and a reshape: compiled by every back end, with a
    gradient that is one product too.
    """
    rows, cols = np.tril_indices(n)
    scatter = np.zeros((n * (n + 1) // 2, n * n))
    scatter[np.arange(len(rows)), rows * n + cols] = 1.0
    flat = pt.dot(packed, scatter)
    return flat.reshape((*packed.shape[:-1], n, n), ndim=packed.ndim + 1)
