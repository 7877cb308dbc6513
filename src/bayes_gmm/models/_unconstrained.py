"""The model's free variables to and from the flat unconstrained point, in NumPy, for any K and D.

The layout and transforms are PyMC's for the model of :func:`bayes_gmm.models.build_model` (see
:mod:`bayes_gmm.models._model_kernel`): weights by the simplex transform, means as they are, ``chol_cov``
packed with the log of its diagonal, ``sigma`` on the log scale. Nothing is compiled, so a sampler's start
points and its draws cost no compilation per model shape.
"""

from __future__ import annotations

import numpy as np

from bayes_gmm.models._lkj import _diag_positions
from bayes_gmm.models._model_kernel import (
    COVARIANCE_CODES,
    DIAG,
    EQUAL_DIAGONAL,
    EQUAL_SPHERICAL,
    FULL,
    SPHERICAL,
    TIED,
)


def free_variable_shapes(covariance_type: str, n_components: int, n_features: int) -> dict[str, tuple]:
    """Shapes of the model's free variables by name, in the model's order (weights, means, covariance)."""
    code = COVARIANCE_CODES[covariance_type]
    packed = n_features * (n_features + 1) // 2
    covariance = {
        FULL: ("chol_cov", (n_components, packed)),
        TIED: ("chol_cov", (packed,)),
        DIAG: ("sigma", (n_components, n_features)),
        SPHERICAL: ("sigma", (n_components,)),
        EQUAL_SPHERICAL: ("sigma", ()),
        EQUAL_DIAGONAL: ("sigma", (n_features,)),
    }[code]
    return {"weights": (n_components,), "means": (n_components, n_features), covariance[0]: covariance[1]}


def to_unconstrained(values: dict[str, np.ndarray], covariance_type: str) -> np.ndarray:
    """The flat unconstrained point of constrained values of the free variables (by name)."""
    n_components, n_features = np.shape(values["means"])
    parts = []
    for name, shape in free_variable_shapes(covariance_type, n_components, n_features).items():
        value = np.array(values[name], dtype=float).reshape(shape)
        if name == "weights":
            log_weights = np.log(value)
            value = log_weights[:-1] - np.sum(log_weights) / n_components
        elif name == "chol_cov":
            diagonal = _diag_positions(n_features)
            value[..., diagonal] = np.log(value[..., diagonal])
        elif name == "sigma":
            value = np.log(value)
        parts.append(np.ravel(value))
    return np.concatenate(parts)


def from_unconstrained(
    points: np.ndarray, covariance_type: str, n_components: int, n_features: int
) -> dict[str, np.ndarray]:
    """Constrained free variables and ``covariances`` (..., K, D, D) of unconstrained points (..., n)."""
    points = np.asarray(points, dtype=float)
    batch = points.shape[:-1]
    values, start = {}, 0
    for name, shape in free_variable_shapes(covariance_type, n_components, n_features).items():
        size = int(np.prod(shape, dtype=int)) if name != "weights" else n_components - 1
        part = points[..., start : start + size]
        start += size
        if name == "weights":
            z = np.concatenate([part, -np.sum(part, axis=-1, keepdims=True)], axis=-1)
            z = np.exp(z - np.max(z, axis=-1, keepdims=True))
            values[name] = z / np.sum(z, axis=-1, keepdims=True)
        elif name == "chol_cov":
            value = part.reshape((*batch, *shape)).copy()
            diagonal = _diag_positions(n_features)
            value[..., diagonal] = np.exp(value[..., diagonal])
            values[name] = value
        elif name == "sigma":
            values[name] = np.exp(part.reshape((*batch, *shape)))
        else:
            values[name] = part.reshape((*batch, *shape))
    if start != points.shape[-1]:
        raise ValueError(f"points have {points.shape[-1]} unconstrained values; the model has {start}.")
    values["covariances"] = _covariances(values, covariance_type, n_components, n_features)
    return values


def _covariances(values: dict, covariance_type: str, n_components: int, n_features: int) -> np.ndarray:
    code = COVARIANCE_CODES[covariance_type]
    if "chol_cov" in values:
        packed = values["chol_cov"]
        rows, cols = np.tril_indices(n_features)
        chol = np.zeros((*packed.shape[:-1], n_features, n_features))
        chol[..., rows, cols] = packed
        covariances = chol @ np.swapaxes(chol, -1, -2)
        if code == TIED:
            covariances = np.broadcast_to(
                covariances[..., None, :, :], (*covariances.shape[:-2], n_components, n_features, n_features)
            )
        return np.array(covariances)
    sigma = values["sigma"]
    batch = values["means"].shape[:-2]
    sd = {
        DIAG: lambda: sigma,
        SPHERICAL: lambda: np.repeat(sigma[..., None], n_features, axis=-1),
        EQUAL_SPHERICAL: lambda: np.broadcast_to(sigma[..., None, None], (*batch, n_components, n_features)),
        EQUAL_DIAGONAL: lambda: np.broadcast_to(sigma[..., None, :], (*batch, n_components, n_features)),
    }[code]()
    return np.square(sd)[..., :, None] * np.eye(n_features)
