"""The marginal GMM log-likelihood as one compiled PyTensor Op with a hand-written gradient.

PyTensor's own graph for the likelihood (:func:`bayes_gmm.models.component_log_densities`) runs as about
a hundred small operations, each with its own per-call overhead, so on a thousand points one
value-and-gradient costs about 0.7 ms. This Op does the same computation in one pass over the data with
the EM baseline's fused numba kernel, and its gradient is assembled from the same kernel's weighted
sufficient statistics (R_k = sum_n g_n r_nk, s_k = sum_n g_n r_nk (x_n - mu_k), S_k = the weighted
scatter, with g the incoming output gradient):

- d/dw_k  = R_k / w_k
- d/dmu_k = Sigma_k^-1 s_k
- d/dL_k  = tril(Sigma_k^-1 S_k L_k^-T) - R_k diag(1 / L_k,ii)       (L_k the Cholesky factor of Sigma_k)
- d/dsd_kd = (S_k,dd / sd_kd^2 - R_k) / sd_kd                         (diagonal covariances)

The symbolic graph stays the reference: the tests check values and gradients of this Op against it, and
the JAX and numba back ends (numpyro, nutpie), which cannot run a Python Op, use the graph.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import grad_not_implemented
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

from bayes_gmm.em_baseline._kernels import fused_estep_statistics

_TINY = np.finfo(np.float64).tiny


@numba.njit(cache=True)
def _precision_factors_from_cholesky(chol, n_components):
    # P = L^-T by forward substitution (a NumPy batched solve costs ~70 us per call on 3 2x2 matrices).
    n_factors, n, _ = chol.shape
    prec = np.zeros((n_components, n, n))
    log_det = np.zeros(n_components)
    for j in range(n_factors):
        inverse = np.zeros((n, n))
        for i in range(n):
            for c in range(i + 1):
                acc = 1.0 if c == i else 0.0
                for m in range(c, i):
                    acc -= chol[j, i, m] * inverse[m, c]
                inverse[i, c] = acc / chol[j, i, i]
        value = 0.0
        for i in range(n):
            value -= math.log(chol[j, i, i])
        for k in range(n_components) if n_factors == 1 else range(j, j + 1):
            prec[k] = inverse.T
            log_det[k] = value
    return prec, log_det


def _precision_factors(scale: np.ndarray, structure: str, n_components: int):
    """Upper precision Cholesky factors P (K, D, D), with Sigma^-1 = P P^T, and log det P (K,)."""
    if structure == "cholesky":
        return _precision_factors_from_cholesky(np.ascontiguousarray(scale), n_components)
    prec = (1.0 / scale)[:, :, None] * np.eye(scale.shape[-1])
    return prec, -np.log(scale).sum(axis=-1)


def _statistics(x, weights, means, scale, structure, *, sample_weight=None, pointwise=None):
    prec, log_det = _precision_factors(scale, structure, means.shape[0])
    # Softmax weights are positive; the floor only guards an underflow to exactly 0 (log -> -708, not -inf).
    log_weights = np.log(np.maximum(weights, _TINY))
    return fused_estep_statistics(
        np.array(x.T, order="C"),
        means,
        prec,
        log_det,
        log_weights,
        full_scatter=structure == "cholesky",
        sample_weight=sample_weight,
        pointwise=pointwise,
        parallel=False,
    ), prec


class MixtureLogp(Op):
    """Pointwise log p(x_n) = log sum_k w_k N(x_n | mu_k, Sigma_k); inputs x, weights, means, scale."""

    __props__ = ("structure",)

    def __init__(self, structure: str):
        self.structure = structure

    def make_node(self, x, weights, means, scale):
        inputs = [pt.as_tensor_variable(v).astype("float64") for v in (x, weights, means, scale)]
        return Apply(self, inputs, [pt.vector(dtype="float64")])

    def perform(self, node, inputs, output_storage):
        x, weights, means, scale = inputs
        pointwise = np.empty(x.shape[0])
        _statistics(x, weights, means, scale, self.structure, pointwise=pointwise)
        output_storage[0][0] = pointwise

    def infer_shape(self, fgraph, node, shapes):
        return [(shapes[0][0],)]

    def L_op(self, inputs, outputs, output_grads):
        grads = MixtureLogpGrad(self.structure)(*inputs, output_grads[0])
        return [grad_not_implemented(self, 0, inputs[0]), *grads]


class MixtureLogpGrad(Op):
    """Gradient of ``sum_n g_n log p(x_n)`` with respect to weights, means and scale."""

    __props__ = ("structure",)

    def __init__(self, structure: str):
        self.structure = structure

    def make_node(self, x, weights, means, scale, output_grad):
        inputs = [pt.as_tensor_variable(v).astype("float64") for v in (x, weights, means, scale, output_grad)]
        return Apply(self, inputs, [inputs[1].type(), inputs[2].type(), inputs[3].type()])

    def perform(self, node, inputs, output_storage):
        x, weights, means, scale, output_grad = inputs
        g = np.ascontiguousarray(np.broadcast_to(output_grad, (x.shape[0],)))
        (_, nk, sx, sxx), prec = _statistics(x, weights, means, scale, self.structure, sample_weight=g)
        precision = prec @ np.swapaxes(prec, -1, -2)  # Sigma^-1
        grad_weights = nk / weights
        if self.structure == "cholesky":
            grad_means = np.einsum("kij,kj->ki", precision, sx)
            inv_diag = 1.0 / np.diagonal(scale, axis1=-2, axis2=-1)  # (J, D)
            grad_scale = np.tril(precision @ sxx @ prec)  # P = L^-T
            grad_scale -= nk[:, None, None] * (inv_diag[:, :, None] * np.eye(scale.shape[-1]))
            if scale.shape[0] == 1 and nk.shape[0] > 1:  # tied: one factor shared by all components
                grad_scale = grad_scale.sum(axis=0, keepdims=True)
        else:
            variance = np.square(scale)
            grad_means = sx / variance
            grad_scale = (np.diagonal(sxx, axis1=-2, axis2=-1) / variance - nk[:, None]) / scale
        for storage, value in zip(output_storage, (grad_weights, grad_means, grad_scale), strict=True):
            storage[0] = value

    def infer_shape(self, fgraph, node, shapes):
        return [shapes[1], shapes[2], shapes[3]]
