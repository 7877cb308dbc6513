"""The marginal GMM log-likelihood as one compiled PyTensor Op with a hand-written gradient.

PyTensor's own graph for the likelihood (:func:`bayes_gmm.models.component_log_densities`) runs as about
a hundred small operations, each with its own per-call overhead, so on a thousand points one
value-and-gradient costs about 0.7 ms. This Op does the same computation in one pass over the data with
the fused numba E-step kernel that EM uses, and its gradient is assembled from the same kernel's weighted
sufficient statistics (the kernels and the formulas: :mod:`bayes_gmm.models._fused_kernels`).

A sampler needs the value and the gradient at every point: in a compiled graph that holds both, the rewrite
:func:`fuse_mixture_logp_and_grad` replaces the pair by :class:`MixtureLogpAndGrad`, which fills the
pointwise log-likelihood and accumulates the weighted statistics in the same pass (the separate Ops each
recompute the densities and responsibilities of every sample).

The Ops run the same numba functions from Python (``perform``: PyMC's own sampler, ADVI) and inside
PyTensor's numba back end (registered with ``numba_funcify``: PyMC's functions compiled in numba mode). nutpie
does not use the Op: it runs the model kernel of :mod:`bayes_gmm.models._model_kernel`, which calls the same
kernels. The symbolic graph stays the reference: the tests check values and gradients of
this Op against it, and the JAX back end (numpyro) uses the graph.
"""

from __future__ import annotations

import pytensor.tensor as pt
from pytensor.gradient import grad_not_implemented
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.graph.rewriting.basic import node_rewriter
from pytensor.graph.traversal import ancestors
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key
from pytensor.tensor.rewriting.basic import register_specialize

from bayes_gmm._numba_cache import KERNEL_SOURCES_DIGEST
from bayes_gmm.models._fused_kernels import (
    cholesky_mixture_logp,
    cholesky_mixture_logp_and_grad,
    cholesky_mixture_logp_grad,
    diagonal_mixture_logp,
    diagonal_mixture_logp_and_grad,
    diagonal_mixture_logp_grad,
)

#: structure -> (pointwise log-likelihood, its gradient, both in one pass); the same functions run in
#: ``perform`` and (through C entry points) in numba mode.
_IMPLEMENTATIONS = {
    "cholesky": (cholesky_mixture_logp, cholesky_mixture_logp_grad, cholesky_mixture_logp_and_grad),
    "diagonal": (diagonal_mixture_logp, diagonal_mixture_logp_grad, diagonal_mixture_logp_and_grad),
}


class MixtureLogp(Op):
    """Pointwise log p(x_n) = log sum_k w_k N(x_n | mu_k, Sigma_k); inputs x, weights, means, scale."""

    __props__ = ("structure",)

    def __init__(self, structure: str):
        self.structure = structure

    def make_node(self, x, weights, means, scale):
        inputs = [pt.as_tensor_variable(v).astype("float64") for v in (x, weights, means, scale)]
        return Apply(self, inputs, [pt.vector(dtype="float64")])

    def perform(self, node, inputs, output_storage):
        output_storage[0][0] = _IMPLEMENTATIONS[self.structure][0](*inputs)

    def infer_shape(self, node, shapes):
        return [(shapes[0][0],)]

    def pullback(self, inputs, outputs, cotangents):
        grads = MixtureLogpGrad(self.structure)(*inputs, cotangents[0])
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
        grads = _IMPLEMENTATIONS[self.structure][1](*inputs)
        for storage, value in zip(output_storage, grads, strict=True):
            storage[0] = value

    def infer_shape(self, node, shapes):
        return [shapes[1], shapes[2], shapes[3]]


class MixtureLogpAndGrad(Op):
    """Pointwise log p(x_n) and the gradient of ``sum_n g_n log p(x_n)``: one pass over the data.

    The outputs are those of :class:`MixtureLogp` and :class:`MixtureLogpGrad` on the same inputs; the
    rewrite :func:`fuse_mixture_logp_and_grad` puts this Op in place of such a pair in a compiled graph.
    """

    __props__ = ("structure",)

    def __init__(self, structure: str):
        self.structure = structure

    def make_node(self, x, weights, means, scale, output_grad):
        inputs = [pt.as_tensor_variable(v).astype("float64") for v in (x, weights, means, scale, output_grad)]
        outputs = [pt.vector(dtype="float64"), inputs[1].type(), inputs[2].type(), inputs[3].type()]
        return Apply(self, inputs, outputs)

    def perform(self, node, inputs, output_storage):
        results = _IMPLEMENTATIONS[self.structure][2](*inputs)
        for storage, value in zip(output_storage, results, strict=True):
            storage[0] = value

    def infer_shape(self, node, shapes):
        return [(shapes[0][0],), shapes[1], shapes[2], shapes[3]]

    def pullback(self, inputs, outputs, cotangents):
        # Only rewrites introduce this Op, after differentiation.
        return [grad_not_implemented(self, i, inp) for i, inp in enumerate(inputs)]


@register_specialize
@node_rewriter([MixtureLogpGrad])
def fuse_mixture_logp_and_grad(fgraph, node):
    """Replace a :class:`MixtureLogpGrad` and the :class:`MixtureLogp` on its inputs by one pass over the data.

    During sampling every evaluation needs both the log-likelihood and its gradient; separately, each
    recomputes the log densities and responsibilities of every sample.
    """
    inputs = node.inputs[:4]
    output_grad = node.inputs[4]
    for client, _ in fgraph.clients[inputs[0]]:
        if (
            isinstance(client.op, MixtureLogp)
            and client.op.structure == node.op.structure
            and all(a is b for a, b in zip(client.inputs, inputs, strict=True))
            # The incoming gradient must not be computed from the log-likelihood itself (a cycle).
            and client.outputs[0] not in ancestors([output_grad])
        ):
            pointwise, *grads = MixtureLogpAndGrad(node.op.structure)(*inputs, output_grad)
            return {client.outputs[0]: pointwise} | dict(zip(node.outputs, grads, strict=True))
    return None


# PyTensor caches the numba code it compiles for these Ops by their props and this number: the digest of the
# kernel sources makes an edit of the kernels invalidate that cache too.
_SOURCE_VERSION = int(KERNEL_SOURCES_DIGEST[:8], 16)


# In numba mode the Ops call the kernels through C entry points (bayes_gmm.models._fused_entry), so that
# compiling a model graph does not compile the kernels into it again; entry_point puts each in place.


@register_funcify_default_op_cache_key(MixtureLogp)
def _numba_mixture_logp(op, node=None, **kwargs):
    from bayes_gmm.models._fused_entry import entry_point

    return entry_point(op.structure, "logp"), _SOURCE_VERSION


@register_funcify_default_op_cache_key(MixtureLogpGrad)
def _numba_mixture_logp_grad(op, node=None, **kwargs):
    from bayes_gmm.models._fused_entry import entry_point

    return entry_point(op.structure, "grad"), _SOURCE_VERSION


@register_funcify_default_op_cache_key(MixtureLogpAndGrad)
def _numba_mixture_logp_and_grad(op, node=None, **kwargs):
    from bayes_gmm.models._fused_entry import entry_point

    return entry_point(op.structure, "logp_and_grad"), _SOURCE_VERSION
