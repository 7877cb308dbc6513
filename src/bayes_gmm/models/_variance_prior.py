"""The prior of every standard deviation in the models: its square, the variance, is inverse-gamma.

Why not a half-normal: a mixture's likelihood grows without bound as one component's variances shrink onto a
few points that share a value (Old Faithful's whole-minute waiting times), and a prior whose density stays
positive at sd = 0 leaves that spike in the posterior, which is then improper. Chains that find it stall
there with tiny step sizes (seen on Old Faithful with 5 and 6 components: one chain at step size 7e-5 and
1,023 leapfrog steps per draw, R-hat 1.6). The inverse-gamma density vanishes faster than any power of sd
as sd -> 0, which removes that spike. It is the conjugate choice for a normal variance (Richardson & Green
1997 for mixtures; R mclust's optional prior, Fraley & Raftery 2007, has these inverse-gamma marginals).

One path to a singular covariance is left in "full" and "tied" models: standard deviations fixed and a
correlation going to +-1, along a line on which at least ``2 lkj_eta`` rows lie exactly (4 at the default
LKJ(2)). The LKJ density falls only like a power of ``1 - r**2`` there; floating point bounds that spike,
and no fit here has been seen to find it, but the posterior is improper in that case. A prior that vanishes
as any eigenvalue of Sigma goes to zero (mclust's inverse-Wishart form) would close it.

Its scale sets where the density falls away; the default (:class:`~bayes_gmm.models.GMMPriors`), a
200th of the data's variance with shape 1/2, is far weaker than mclust's (a quarter of the variance, shape
3/2, for two components in two dimensions), whose pull widens tight clusters of a few dozen points: 30
points with sample sd 0.049 beside 200 with sd 1 (2-D, diag) get a posterior mean sd of 0.22 under
mclust's, 0.060 under the default, 0.053 with a thousandth of the variance and under a half-normal. With shape 1/2 the reciprocal of the
standard deviation is half-normal (1 / sd ~ HalfNormal(1 / sqrt(2 scale))).

With ``sd**2 ~ InverseGamma(shape, scale)`` (density ``scale**shape / Gamma(shape) v**(-shape - 1)
exp(-scale / v)`` of the variance v), the standard deviation has density

    p(sd) = 2 scale**shape / Gamma(shape) * sd**(-2 shape - 1) * exp(-scale / sd**2).
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

LOG_2 = float(np.log(2.0))


def inverse_gamma_sd_logp(sd, shape, scale):
    """Elementwise log-density of standard deviations whose squares are InverseGamma(shape, scale).

    Parameters
    ----------
    sd : tensor
        Standard deviations (> 0).
    shape, scale : tensor or float
        The inverse-gamma's shape (alpha) and scale (beta) of the variance, broadcast against `sd`.

    Returns
    -------
    tensor
        ``log p(sd)``, the shape of the broadcast inputs.
    """
    return (
        LOG_2
        + shape * pt.log(scale)
        - pt.gammaln(shape)
        - (2.0 * shape + 1.0) * pt.log(sd)
        - scale / pt.square(sd)
    )


def inverse_gamma_sd_mode(shape, scale):
    """The standard deviation at the variance's mode, ``sqrt(scale / (shape + 1))`` (a start point)."""
    return pt.sqrt(scale / (shape + 1.0))


def sample_inverse_gamma_sd(rng: np.random.Generator, shape, scale, size=None) -> np.ndarray:
    """Draw standard deviations whose squares are InverseGamma(shape, scale) (1 / variance is Gamma)."""
    return np.sqrt(np.asarray(scale) / rng.gamma(shape, 1.0, size=size))


def inverse_gamma_sd(name: str, *, variance_shape, variance_scale, dims=None, size=None):
    """Add standard deviations with an inverse-gamma prior on their squares to the current PyMC model.

    Parameters
    ----------
    name : str
        Variable name.
    variance_shape : tensor or float
        Inverse-gamma shape of the variances (> 0).
    variance_scale : tensor or array
        Inverse-gamma scale of the variances (> 0), broadcast to the variable's shape.
    dims : str or tuple of str, optional
        Dimension names of the variable (they give its shape).
    size : tuple, optional
        Shape of the variable when `dims` do not give it (e.g. ``()`` for one value).

    Returns
    -------
    TensorVariable
        The standard deviations, sampled on the log scale.
    """

    def dist(shape, scale, size):
        # Drawn in the graph (compiled, no Python callback): 1 / variance ~ Gamma(shape, rate=scale).
        return pt.sqrt(scale / pm.Gamma.dist(alpha=shape, beta=1.0, size=size))

    def support_point(rv, size, shape, scale):
        return pt.broadcast_to(inverse_gamma_sd_mode(shape, scale), rv.shape)

    return pm.CustomDist(
        name,
        pt.as_tensor(variance_shape).astype("float64"),
        pt.as_tensor(variance_scale).astype("float64"),
        logp=lambda value, shape, scale: inverse_gamma_sd_logp(value, shape, scale),
        dist=dist,
        support_point=support_point,
        transform=pm.distributions.transforms.log,
        dims=dims,
        **({} if size is None else {"shape": size}),
    )
