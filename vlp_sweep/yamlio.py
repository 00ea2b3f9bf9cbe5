"""Safe YAML with the floats people write: the one loader behind config files, ``--set`` and spaces.

PyYAML follows YAML 1.1, which reads ``3e-3``, ``1e5`` and ``1.5e3`` as strings (it wants a dot and a
signed exponent: ``3.0e-3``); a float key then fails with "expected float, got str '3e-3'". This
loader adds YAML 1.2's exponent forms to the float resolver. Only :class:`yaml.SafeLoader` is used:
tags that build Python objects are refused.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

__all__ = ["FloatLoader", "FLOAT_RE", "safe_load"]

# A float with an exponent, with or without a dot or a sign: 3e-3, 3E-3, 1e5, 1.5e3, .5e-3, 5.e2, 1_000e-3.
# (The forms YAML 1.1 already reads as floats, 0.5, .5, 5., -1.0e-3, keep their own resolver.)
FLOAT_RE = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")


class FloatLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads exponent floats without a dot or a signed exponent."""


FloatLoader.add_implicit_resolver("tag:yaml.org,2002:float", FLOAT_RE, list("-+0123456789."))


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` with :class:`FloatLoader`."""
    return yaml.load(text, Loader=FloatLoader)  # noqa: S506 - FloatLoader is a SafeLoader subclass
