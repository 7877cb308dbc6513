"""bayes-gmm: Gaussian mixture models done the Bayesian way, with a fast EM baseline."""

from bayes_gmm._version import __version__

__all__ = ["__version__"]
