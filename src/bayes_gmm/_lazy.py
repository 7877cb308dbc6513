"""Public names of a package imported on first use (PEP 562), so that importing the package stays cheap."""

from __future__ import annotations

import importlib


def lazy_exports(namespace: dict, exports: dict[str, str]):
    """The module-level ``__getattr__`` and ``__dir__`` of a package whose public names load on first use.

    Parameters
    ----------
    namespace : dict
        The package's ``globals()``; a name, once imported, is stored there, so the next use is a plain
        attribute look-up.
    exports : dict
        Public name -> the module that defines it, absolute or relative to the package (".module").

    Returns
    -------
    __getattr__, __dir__
        To be assigned to the package's names of the same names.
    """
    package = namespace["__name__"]

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name], package), name)
        namespace[name] = value
        return value

    def __dir__():
        return sorted({*namespace, *exports})

    return __getattr__, __dir__
