"""The ``bayes-gmm`` console script: the model kernel's first compile starts before the command's imports.

The command's modules (PyMC, ArviZ, matplotlib) take seconds to import, and the first NUTS fit after an
install compiles nutpie's model kernel (:mod:`bayes_gmm.models._model_kernel`) in another process for
several more. Started here, from a look at the command line, that compile runs while they import. The look
is only a guess at what :func:`bayes_gmm.cli.main` will parse: a command line it misreads starts a compile
that is not needed (it finishes in the background, in the cache for later) or none, and the command then
starts it itself, as it always does.
"""

from __future__ import annotations

import sys

#: The commands whose default method is NUTS.
_NUTS_COMMANDS = ("fit", "select-k")


def _option(argv: list[str], name: str, default: str) -> str:
    """The last value of the option `name` (``--name value`` or ``--name=value``) in `argv`."""
    value = default
    for index, argument in enumerate(argv):
        if argument == name and index + 1 < len(argv):
            value = argv[index + 1]
        elif argument.startswith(name + "="):
            value = argument[len(name) + 1 :]
    return value


#: Back ends that run on the model kernel, by method: nutpie for NUTS, the kernel's own ADVI.
_KERNEL_BACKENDS = {
    "nuts": ("auto", "nutpie"),
    "advi": ("auto", "kernel"),
    "fullrank_advi": ("auto", "kernel"),
}


def nutpie_covariance_types(argv: list[str]) -> list[str]:
    """The covariance types whose model kernels the command line `argv` (without the program) will run.

    Empty for a command that runs no fit on the kernel (EM, another back end, help). The options are read
    by their full names only: the command's parser takes no abbreviations.
    """
    if not argv or argv[0] not in _NUTS_COMMANDS or {"-h", "--help"} & set(argv):
        return []
    method = _option(argv, "--method", "nuts")
    if _option(argv, "--backend", "auto") not in _KERNEL_BACKENDS.get(method, ()):
        return []
    return [name.strip() for name in _option(argv, "--covariance", "full").split(",") if name.strip()]


def main(argv: list[str] | None = None) -> int:
    """Run ``bayes-gmm`` (:func:`bayes_gmm.cli.main`), its model kernel's compile started first."""
    argv = sys.argv[1:] if argv is None else list(argv)
    covariance_types = nutpie_covariance_types(argv)
    if covariance_types:
        from bayes_gmm.models._model_kernel import start_compiling

        start_compiling(covariance_types)
    from bayes_gmm._interrupt import exit_by_signal
    from bayes_gmm.cli import main as cli_main

    return exit_by_signal(cli_main(argv))  # a run stopped by a signal ends by it (a shell loop stops)
