"""Load pickles that may hold plain data only: builtin containers, str, int, float, bool and None.

`pickle.load` runs whatever callable a pickle names (a GLOBAL or STACK_GLOBAL opcode followed by
REDUCE, NEWOBJ, INST or OBJ), so a pickle from a package index is code, not data. Every one of those
opcodes gets its callable through `find_class`; this unpickler answers only for the builtin types
below and raises for anything else, before the name is even looked up, so nothing outside them can
run. Plain values (str, int, float, bool, None, list, tuple, dict) need no callable at all; set and
frozenset do in pickle protocols below 4.
"""
from __future__ import annotations

import builtins
import io
import os
import pickle

from zhbench.io import BadInputError

ALLOWED_BUILTINS = frozenset({"list", "tuple", "dict", "set", "frozenset", "str", "int", "float", "bool"})
# Protocols 0-2 write Python 2's name for the builtins module.
_BUILTINS_MODULES = ("builtins", "__builtin__")


class UnsafePickleError(BadInputError):
    """The pickle names a callable outside ALLOWED_BUILTINS (or a persistent id)."""


class PlainDataUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, path: str | os.PathLike):
        super().__init__(file)
        self._path = path

    def find_class(self, module: str, name: str):
        if module in _BUILTINS_MODULES and name in ALLOWED_BUILTINS:
            return getattr(builtins, name)
        raise UnsafePickleError(self._path, None, f"refused to load {module}.{name}: a plain-data pickle may "
                                                  f"only name builtins {', '.join(sorted(ALLOWED_BUILTINS))}")

    def persistent_load(self, pid):
        raise UnsafePickleError(self._path, None, "refused a persistent id: a plain-data pickle has none")


def load_plain(path: str | os.PathLike):
    """The object in the pickle at `path`; UnsafePickleError if it names anything but plain builtins."""
    with open(path, "rb") as f:
        try:
            return PlainDataUnpickler(f, path).load()
        except BadInputError:
            raise
        except Exception as e:  # truncated or corrupt: the unpickler raises many kinds
            raise BadInputError(path, None, f"expected a pickle of plain data, found a broken one "
                                            f"({type(e).__name__}: {e})") from None
