"""Safe YAML loading that remembers the line of every mapping key, and one-line error messages.

Only :class:`yaml.SafeLoader` is used: tags that build Python objects (``!!python/object``) are
refused. Two deliberate differences from plain ``yaml.safe_load``:

- ``1e-4`` is a float. YAML 1.1 reads it as the string "1e-4" (it wants ``1.0e-4``), which
  would make ``loguniform: [1e-4, 3e-3]`` a confusing type error.
- A key given twice in one mapping is an error; PyYAML would silently keep the last one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from vlp_sweep.errors import UserError
from vlp_sweep.yamlio import FloatLoader


class LineDict(dict):  # type: ignore[type-arg]
    """A dict from YAML that knows its own line and the line of each of its keys (1-based)."""

    line: int | None = None
    key_lines: dict[Any, int]

    def __init__(self, *args: Any, line: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.line = line
        self.key_lines = {}

    def put(self, key: Any, value: Any, line: int | None) -> None:
        """Set a key and remember where it came from (used when converting one format into another)."""
        self[key] = value
        if line is not None:
            self.key_lines[key] = line


def line_of(mapping: Any, key: Any) -> int | None:
    """Line of ``key`` in ``mapping`` when it came from YAML, else the mapping's own line, else None."""
    lines = getattr(mapping, "key_lines", None)
    if lines and key in lines:
        return int(lines[key])
    return getattr(mapping, "line", None)


class Where:
    """Builds the one-line :class:`UserError` for a key: ``source, line N: key: message``.

    ``labels`` renames a top-level section in messages (a W&B file says ``parameters`` where the
    native format says ``search`` / ``base``).
    """

    def __init__(self, source: str | None = None, labels: dict[str, str] | None = None) -> None:
        self.source = source
        self.labels = labels or {}

    def label(self, key: str) -> str:
        head, _, rest = key.partition(".")
        if head in self.labels:
            return f"{self.labels[head]}.{rest}" if rest else self.labels[head]
        return key

    def error(self, key: str, message: str, line: int | None = None) -> UserError:
        at = ", ".join(p for p in (self.source, f"line {line}" if line else None) if p)
        return UserError(f"{at + ': ' if at else ''}{self.label(key)}: {message}")


class _Loader(FloatLoader):  # exponent floats such as 1e-4 (vlp_sweep.yamlio)
    def construct_line_map(self, node: yaml.MappingNode) -> Any:
        data = LineDict(line=node.start_mark.line + 1)
        yield data  # lets anchors refer to this mapping before it is filled (PyYAML's protocol)
        explicit = sum(1 for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge")
        self.flatten_mapping(node)
        # Pairs merged in with '<<' come first, and explicit keys may override them.
        n_merged = len(node.value) - explicit
        merged: set[Any] = set()
        for i, (key_node, value_node) in enumerate(node.value):
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(None, None, "a mapping key must be a plain value",
                                                        key_node.start_mark) from None
            if key in data and key not in merged:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key}' appears twice (first on line {data.key_lines[key]})",
                    key_node.start_mark)
            if i < n_merged:
                merged.add(key)
            else:
                merged.discard(key)
            data.put(key, self.construct_object(value_node, deep=True), key_node.start_mark.line + 1)


_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_line_map)


def _message(err: yaml.YAMLError) -> tuple[str, int | None]:
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    tag = re.search(r"tag '([^']+)'", problem)
    if tag:
        problem = (f"unsupported YAML tag '{tag.group(1)}' (search spaces are plain YAML; "
                   "tags such as !!python/object are refused)")
    return " ".join(problem.split()), line


def parse_yaml(text: str, source: str | None = None) -> Any:
    """YAML text -> plain data whose mappings are :class:`LineDict`; errors are one-line UserErrors."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader subclass
    except yaml.YAMLError as e:
        problem, line = _message(e)
        at = ", ".join(p for p in (source, f"line {line}" if line else None) if p)
        raise UserError(f"{at + ': ' if at else ''}malformed YAML: {problem}") from None


def load_yaml(path: str | Path) -> Any:
    """Read a YAML file with :func:`parse_yaml`; a missing or unreadable file is a UserError."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"search space not found: {p}")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{p}: cannot read ({type(e).__name__})") from None
    return parse_yaml(text, str(p))
