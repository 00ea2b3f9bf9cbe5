"""One searched parameter: a key, its distribution, and the condition under which it is drawn.

A ``Param`` searches one dotted trainer key (``optim.lr``), or, for a coupled choice, a name of its
own (``model_size``) whose every value is a :class:`~vlp_sweep.space.distributions.Setting` of
several trainer keys. ``when`` makes it conditional: drawn (and active) only when other searched
keys hold given values. The helpers below order params by their conditions and tell which are
active for a set of sampled values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vlp_sweep.errors import UserError
from vlp_sweep.space.distributions import Discrete, Distribution, Setting, contains, fmt, same_value

__all__ = ["Condition", "CycleError", "Param", "contains", "flatten", "holds", "same_value", "topological",
           "with_parents"]

Condition = tuple[tuple[str, tuple[Any, ...]], ...]


@dataclass(frozen=True)
class Param:
    """A searched key. ``distribution`` says what it takes; ``when`` when it is drawn."""

    key: str
    distribution: Distribution
    when: Condition = ()

    @property
    def kind(self) -> str:
        return self.distribution.kind

    @property
    def discrete(self) -> bool:
        return self.distribution.discrete

    @property
    def coupled(self) -> bool:
        """Whether each value sets several trainer keys (a choice of settings)."""
        return isinstance(self.distribution, Discrete) and self.distribution.coupled

    @property
    def options(self) -> tuple[Any, ...]:
        """What a trial's params hold for a discrete key: its values, or its settings' labels."""
        assert isinstance(self.distribution, Discrete), self.key
        return self.distribution.options

    @property
    def settings(self) -> tuple[Setting, ...]:
        """A coupled choice's settings (each sets several trainer keys); () for any other param."""
        d = self.distribution
        return tuple(v for v in d.values if isinstance(v, Setting)) if isinstance(d, Discrete) else ()

    def sets(self) -> tuple[str, ...]:
        """The trainer keys a draw sets: the key itself, or every key its settings set."""
        if not self.coupled:
            return (self.key,)
        assert isinstance(self.distribution, Discrete)
        return tuple(sorted({k for s in self.distribution.values for k, _ in s.values}))

    def expand(self, value: Any) -> dict[str, Any]:
        """A drawn value -> the trainer keys it sets (a label -> its setting's keys)."""
        if not self.coupled:
            return {self.key: value}
        assert isinstance(self.distribution, Discrete)
        return self.distribution.setting(value).as_dict()

    def values_of(self, key: str) -> list[Any]:
        """Every value this param can give trainer key ``key``: the values, the settings' values,
        or a range's two ends."""
        if self.coupled:
            assert isinstance(self.distribution, Discrete)
            return [dict(s.values)[key] for s in self.distribution.values if key in dict(s.values)]
        if self.discrete:
            return list(self.options)
        return list(self.distribution.check_points())

    def describe(self) -> str:
        """Human form, e.g. ``loguniform 0.0001 .. 0.003`` or ``choice [32, 48, 64]``."""
        return self.distribution.describe()

    def condition_text(self) -> str:
        return " and ".join(f"{k} = {' | '.join(fmt(v) for v in vs)}" for k, vs in self.when)

    def to_dict(self) -> dict[str, Any]:
        """Plain data in the native ``search:`` entry form (parses back to an equal Param)."""
        out = self.distribution.to_dict()
        if self.when:
            out["when"] = {k: list(vs) for k, vs in self.when}
        return out


def holds(p: Param, values: Mapping[str, Any]) -> bool:
    """Whether ``p``'s condition holds for drawn ``values`` (a condition on an undrawn key fails)."""
    return all(k in values and contains(vs, values[k]) for k, vs in p.when)


class CycleError(UserError):
    def __init__(self, key: str, text: str) -> None:
        super().__init__(f"search.{key}.when: {text}")
        self.key, self.text = key, text


def topological(params: tuple[Param, ...]) -> tuple[Param, ...]:
    """``params`` with every condition's key before the keys that depend on it (CycleError on a cycle)."""
    by_key = {p.key: p for p in params}
    done: dict[str, Param] = {}

    def visit(p: Param, path: tuple[str, ...]) -> None:
        if p.key in done:
            return
        if p.key in path:
            raise CycleError(p.key, f"conditions form a cycle ({' -> '.join((*path, p.key))})")
        for k, _ in p.when:
            if k in by_key:
                visit(by_key[k], (*path, p.key))
        done[p.key] = p

    for p in params:
        visit(p, ())
    return tuple(done.values())


def with_parents(keys: tuple[str, ...], search: tuple[Param, ...]) -> list[Param]:
    """The params of ``keys`` and every key their conditions depend on, in dependency order."""
    by_key = {p.key: p for p in search}
    need, todo = set(), list(keys)
    while todo:
        k = todo.pop()
        if k not in need:
            need.add(k)
            todo += [parent for parent, _ in by_key[k].when]
    return [p for p in topological(search) if p.key in need]


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested sampled params -> flat dotted keys."""
    out: dict[str, Any] = {}
    for k, v in params.items():
        if isinstance(v, Mapping):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
