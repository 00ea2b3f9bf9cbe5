"""A model factory named in the config: ``model.factory: "package.module:function"`` and its ``model.options``.

A factory is called as ``function(dims, **options)`` with the input dimensions
(``train.factory.ModelDims``) and returns an ``nn.Module`` (the contract: README, "Your own model").
This module finds and imports it, and checks options against the function's own signature (unknown
names, annotated types, options without a default) so that a bad option fails before any trial
starts. Plain Python, no torch: the config (``config.py``) and the search space check a factory with
it; the trainer builds the module (``train/factory.py``).
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from vlp_sweep.errors import UserError, did_you_mean

BUILTIN_FACTORY = "vlp_sweep.train.model:build"
# The built-in model's options are typed trainer keys (model.d_model, ...), not model.options.
BUILTIN_OPTIONS = ("d_model", "video_layers", "text_layers", "heads", "ff_mult", "dropout")
HOW_TO_IMPORT = ("run from the folder that holds it, list that folder under code: in the search space, "
                 "or add it to PYTHONPATH")


@dataclass(frozen=True)
class OptionSpec:
    """One option a factory takes: its annotated type (a name, 'any' when not annotated or not a
    plain type), default (``REQUIRED`` when none) and allowed values (``Literal``)."""

    name: str
    type: str
    default: Any
    choices: tuple[Any, ...] = ()
    hint: Any = None  # the annotation itself (None when absent)

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


REQUIRED: Any = inspect.Parameter.empty
_PLAIN = {int: "int", float: "float", bool: "bool", str: "str"}


def split_factory(spec: str) -> tuple[str, str]:
    """``"package.module:function"`` -> (module, function)."""
    if not isinstance(spec, str) or spec.count(":") != 1 or not all(p.strip() for p in spec.split(":")):
        raise UserError(f"model.factory: expected 'package.module:function', got {spec!r}")
    module, attr = (p.strip() for p in spec.split(":"))
    return module, attr


def add_import_paths(paths: Iterable[str | os.PathLike[str]]) -> None:
    """Put folders on ``sys.path`` (after what is there: user code never shadows installed packages)."""
    for p in paths:
        s = os.path.abspath(os.fspath(p))
        if s not in sys.path:
            sys.path.append(s)
    importlib.invalidate_caches()


def resolve_factory(spec: str) -> Callable[..., Any]:
    """Import the factory named by ``spec``; every failure is one line naming what and why."""
    module_name, attr = split_factory(spec)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        missing = e.name or module_name
        raise UserError(f"model.factory {spec!r}: cannot import module '{module_name}' (no module named "
                        f"'{missing}'): {HOW_TO_IMPORT}") from None
    except Exception as e:  # the user's module raised while importing: name its exception, no traceback
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise UserError(f"model.factory {spec!r}: importing '{module_name}' raised {type(e).__name__}"
                        f"{f': {first}' if first else ''}") from None
    fn = getattr(module, attr, None)
    if fn is None:
        names = [n for n in vars(module) if callable(getattr(module, n)) and not n.startswith("_")]
        raise UserError(f"model.factory {spec!r}: module '{module_name}' has no '{attr}'{did_you_mean(attr, names)}")
    if not callable(fn):
        raise UserError(f"model.factory {spec!r}: '{attr}' is a {type(fn).__name__}, not a function")
    return fn  # type: ignore[no-any-return]


def _signature(spec: str, fn: Callable[..., Any]) -> list[inspect.Parameter]:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        raise UserError(f"model.factory {spec!r}: cannot read the function's signature") from None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if not params or params[0].kind not in positional:
        raise UserError(f"model.factory {spec!r}: the function must take the input dimensions (ModelDims) as "
                        "its first argument, then the options by name, e.g. build(dims, hidden=128)")
    return params[1:]


def _type_info(hint: Any) -> tuple[str, tuple[Any, ...]]:
    """A type hint -> (type name for checks and docs, Literal choices)."""
    if hint in _PLAIN:
        return _PLAIN[hint], ()
    if typing.get_origin(hint) is Literal:
        return "any", typing.get_args(hint)
    return "any", ()


def factory_options(spec: str) -> tuple[dict[str, OptionSpec], bool]:
    """The options ``spec``'s function takes by name, and whether it takes any name (``**kwargs``)."""
    fn = resolve_factory(spec)
    params = _signature(spec, fn)
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # an annotation that does not evaluate: check names only
        hints = {}
    out: dict[str, OptionSpec] = {}
    any_name = False
    for p in params:
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            any_name = True
        elif p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
            typ, choices = _type_info(hints.get(p.name))
            out[p.name] = OptionSpec(p.name, typ, p.default, choices, hints.get(p.name))
    return out, any_name


def _union_members(hint: Any) -> tuple[Any, ...]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _fits(value: Any, hint: Any) -> bool:
    """Whether ``value`` fits a plain annotated type (ints pass as floats; bools never as numbers)."""
    for h in _union_members(hint):
        if h is type(None) and value is None:
            return True
        if typing.get_origin(h) is Literal and value in typing.get_args(h):
            return True
        if h in _PLAIN and isinstance(value, h) and not (isinstance(value, bool) and h is not bool):
            return True
        if h is float and isinstance(value, int) and not isinstance(value, bool):
            return True
        if h is Any or (h not in _PLAIN and h is not type(None) and typing.get_origin(h) is not Literal):
            return True  # a type we do not check
    return False


def check_options(spec: str, options: Mapping[str, Any]) -> None:
    """Unknown option names (with 'did you mean') and values of the wrong annotated type."""
    known, any_name = factory_options(spec)
    for name, value in options.items():
        key = f"model.options.{name}"
        if name not in known:
            if any_name:
                continue
            raise UserError(f"{key}: model.factory {spec!r} takes no option '{name}'{did_you_mean(name, known)}"
                            f" (it takes: {', '.join(known) or 'none'})")
        hint = known[name].hint
        if hint is not None and not _fits(value, hint):
            raise UserError(f"{key}: expected {_hint_name(hint)} (the factory's annotation), got "
                            f"{type(value).__name__} {value!r}")


def _hint_name(hint: Any) -> str:
    """"int | None", and a Literal as its allowed values: "one of 'gru', 'lstm'"."""
    def name(h: Any) -> str:
        if typing.get_origin(h) is Literal:
            return "one of " + ", ".join(repr(v) for v in typing.get_args(h))
        return "None" if h is type(None) else getattr(h, "__name__", None) or str(h)

    return " | ".join(name(h) for h in _union_members(hint))


def module_root(spec: str) -> str | None:
    """The folder that makes the (imported) factory's module importable: what ``sys.path`` needs.
    None for the built-in model or a module without a file."""
    if spec == BUILTIN_FACTORY:
        return None
    name = split_factory(spec)[0]
    file = getattr(sys.modules.get(name), "__file__", None)
    if not file:
        return None
    root = Path(file).resolve().parent
    for _ in range(name.count(".") + (Path(file).name == "__init__.py")):
        root = root.parent
    return str(root)


def check_model_config(cfg: Any) -> None:
    """A ModelConfig's factory and options: the built-in model takes its options as typed keys and
    no model.options; a factory of your own takes model.options only (a built-in key set away from its
    default would be silently ignored, so it is an error)."""
    split_factory(cfg.factory)
    if cfg.factory == BUILTIN_FACTORY:
        if cfg.options:
            name = next(iter(cfg.options))
            hint = f" (did you mean 'model.{name}'?)" if name in BUILTIN_OPTIONS else ""
            raise UserError(f"model.options.{name}: the built-in model takes no model.options{hint}; they are "
                            "for a model.factory of your own")
        return
    for f in fields(cfg):
        if f.name in BUILTIN_OPTIONS and getattr(cfg, f.name) != f.default:
            raise UserError(f"model.{f.name}: an option of the built-in model, unused by model.factory "
                            f"{cfg.factory!r}; give that model's options as model.options.NAME")
    check_options(cfg.factory, cfg.options)


def option_keys(spec: str) -> tuple[dict[str, dict[str, Any]], bool]:
    """``model.options.NAME`` -> the same fields as ``config.config_keys()`` (type, default, help,
    choices, range), for the search space; and whether the factory takes any name."""
    if spec == BUILTIN_FACTORY:
        return {}, False
    known, any_name = factory_options(spec)
    out = {f"model.options.{n}": {"type": o.type, "default": None if o.required else o.default,
                                  "help": f"option of {spec}", "choices": o.choices, "lo": None, "hi": None,
                                  "lo_open": False, "hi_open": False, "required": o.required}
           for n, o in known.items()}
    return out, any_name


def is_option_key(key: str) -> bool:
    """Whether ``key`` is a dotted ``model.options.NAME`` key."""
    parts = key.split(".")
    return len(parts) == 3 and parts[:2] == ["model", "options"] and bool(parts[2])


def check_required(spec: str, given: Iterable[str]) -> None:
    """Options without a default must be given (``given``: option names set in base or always searched)."""
    if spec == BUILTIN_FACTORY:  # no model.options (see check_options); and no torch import in the driver
        return
    known, _ = factory_options(spec)
    missing = [n for n, o in known.items() if o.required and n not in set(given)]
    if missing:
        raise UserError(f"model.options.{missing[0]}: model.factory {spec!r} needs it (no default): set it in "
                        "base or search it")
