"""Checks of a search space that look at more than one entry: what the trainer accepts (every value a
trial can draw, keys checked together as pairs), conditions, keys set twice, and what the search
algorithm, the scheduler and the seeds allow together. Each problem is one line naming the key and
its YAML line; what is merely worth knowing becomes a warning.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from vlp_sweep.config import LINKED_KEYS, config_keys, make_config
from vlp_sweep.errors import LinkedKeysError, UserError, did_you_mean
from vlp_sweep.space.distributions import Discrete, contains, fmt
from vlp_sweep.space.params import CycleError, Param, topological, with_parents
from vlp_sweep.space.sections import Scheduler, SearchAlg
from vlp_sweep.space.yaml_lines import Where


def trainer_range(key: str) -> str:
    """The values the trainer takes for ``key``, e.g. ``in [0, 1)``, ``> 0``, ``one of a, b``."""
    m = config_keys().get(key)
    if m is None:  # a model.options key: what the factory's annotation allows
        return "what the model factory takes"
    if m["choices"]:
        return f"one of {', '.join(map(str, m['choices']))}"
    lo, hi = m["lo"], m["hi"]
    if lo is not None and hi is not None:
        return f"in {'(' if m['lo_open'] else '['}{fmt(lo)}, {fmt(hi)}{')' if m['hi_open'] else ']'}"
    if lo is not None:
        return f"{'>' if m['lo_open'] else '>='} {fmt(lo)}"
    if hi is not None:
        return f"{'<' if m['hi_open'] else '<='} {fmt(hi)}"
    return f"any {m['type']}"


def strip_key(message: str, key: str) -> str:
    """The trainer's messages start with the dotted key, which the caller's label already names."""
    return message[len(key) + 2:] if message.startswith(f"{key}: ") else message


class Checks:
    """Cross-key checks over a parsed ``search`` and ``base`` (flat dotted keys)."""

    def __init__(self, where: Where, lines: dict[str, int], warnings: list[str]) -> None:
        self.w, self.lines, self.warnings = where, lines, warnings
        self.keys = config_keys()

    def err(self, key: str, msg: str) -> UserError:
        return self.w.error(key, msg, self.lines.get(key) or None)

    # ------------------------------------------------------------ values through the trainer

    def points(self, p: Param, base: dict[str, Any]) -> None:
        """Every value (or both ends of a range) through the trainer config, so a bad sample fails now.
        A rule linking this key to another (``model.heads`` must divide ``model.d_model``) is left to
        :meth:`linked`, which sees both."""
        label = f"search.{p.key}"
        if p.coupled:
            self._settings(p, base)
            return
        typ = self.keys[p.key]["type"]
        d = p.distribution
        if typ == "int" and not p.discrete and not d.integer:
            hint = (f"use int: [low, high] instead of {p.kind}" if p.kind in ("uniform", "loguniform")
                    else "give step (W&B's q) as an integer so that every value is one")
            raise self.err(label, f"is an integer key: {hint}")
        if typ in ("bool", "str") and not p.discrete:
            raise self.err(label, f"takes {typ} values: use choice: [...] instead of {p.kind}")
        for v in d.check_points():
            try:
                make_config(base, {p.key: v})
            except LinkedKeysError:
                continue  # fine alone: linked() checks it with what it can be paired with
            except UserError as e:
                why = strip_key(str(e), p.key)
                if getattr(d, "shaped", False) and not p.discrete:
                    raise self.err(label, f"{d.describe()}: the trainer takes {p.key} {trainer_range(p.key)} and "
                                          f"rejects {fmt(v)}") from None
                raise self.err(label, f"the trainer rejects {v!r}: {why}") from None

    def _settings(self, p: Param, base: dict[str, Any]) -> None:
        """Each setting of a coupled choice as a whole (a pair it sets completely is checked at once)."""
        assert isinstance(p.distribution, Discrete)
        for s in p.distribution.values:
            try:
                make_config(base, s.as_dict())
            except LinkedKeysError as e:
                if set(e.keys) <= set(s.as_dict()):
                    raise self.err(f"search.{p.key}", f"setting '{s.label}': {e}") from None
            except UserError as e:
                raise self.err(f"search.{p.key}", f"setting '{s.label}': the trainer rejects it: {e}") from None

    def linked(self, search: tuple[Param, ...], base: dict[str, Any]) -> None:
        """Keys the trainer checks together (``model.d_model`` / ``model.heads``): the base values, or
        every pair a trial can draw (conditions applied; a key not drawn keeps its base value or
        default; a coupled choice sets several keys at once), must be valid, or those trials would fail."""
        for keys in LINKED_KEYS:
            setters = tuple(p.key for p in search if set(p.sets()) & set(keys))
            if not setters:
                self.fixed_pair({k: base[k] for k in keys if k in base}, "base")
                continue
            involved = with_parents(setters, search)
            listed = [p.distribution.enumerate() for p in involved]
            # A range too long to list is checked at its two ends (values a trial can draw), so a bad
            # pair there is still caught; the pairs between stay unchecked.
            value_sets = [vs if vs is not None else list(p.distribution.check_points())
                          for p, vs in zip(involved, listed, strict=True)]
            if None in listed or math.prod(len(vs) for vs in value_sets) > 4096:
                self.warnings.append(_unchecked_pairs(keys, setters, search, base))
                if math.prod(len(vs) for vs in value_sets) > 4096:
                    continue
            pairs = self._pairs(keys, involved, value_sets, search, base)
            bad = []
            for pair, key in pairs.items():
                try:
                    make_config(dict(zip(keys, pair, strict=True)))  # this rule alone: another may need its pair
                except LinkedKeysError as e:
                    bad.append((str(e), key))
            if bad:
                label = f"search.{bad[0][1]}" if any(p.key == bad[0][1] for p in search) else f"base.{bad[0][1]}"
                raise self.err(label, f"{bad[0][0]}: {len(bad)} of the {len(pairs)} pairs of {' and '.join(keys)} "
                                      "a trial can draw would fail (search values that always fit, or make one key "
                                      "conditional on the other with when:)")

    def _pairs(self, keys: tuple[str, ...], involved: list[Param], value_sets: list[Any],
               search: tuple[Param, ...], base: dict[str, Any]) -> dict[tuple[Any, ...], str]:
        """Every distinct pair a trial can draw -> the searched key a bad pair is blamed on."""
        from vlp_sweep.space.spec import SweepSpec

        spec = SweepSpec(name="-", base=tuple(base.items()), search=search)
        by_key = {p.key: p for p in search}
        pairs: dict[tuple[Any, ...], str] = {}
        for combo in itertools.product(*value_sets):
            active = spec.active_params(dict(zip((p.key for p in involved), combo, strict=True)))
            drawn = {tk: (tv, pk) for pk, v in active.items() for tk, tv in by_key[pk].expand(v).items()}
            pair = tuple(drawn[k][0] if k in drawn else spec.fixed(k) for k in keys)
            pairs.setdefault(pair, next((drawn[k][1] for k in reversed(keys) if k in drawn), keys[-1]))
        return pairs

    def fixed_pair(self, values: dict[str, Any], label: str, under: dict[str, Any] | None = None) -> None:
        """A linked rule over fixed values (``base``, or ``baseline.config`` over ``under``)."""
        merged = {**(under or {}), **values}
        for keys in LINKED_KEYS:  # one rule at a time: another rule's bad base pair may be searched away
            if not set(keys) & set(values):
                continue
            try:
                make_config({k: merged[k] for k in keys if k in merged})
            except LinkedKeysError as e:
                key = next((k for k in reversed(e.keys) if k in values), e.keys[-1])
                raise self.err(f"{label}.{key}", str(e)) from None

    # ------------------------------------------------------------ structure

    def overlaps(self, search: tuple[Param, ...], base: dict[str, Any]) -> None:
        """A trainer key has one place: searched once, and fixed in base only as a conditional key's
        value when inactive (or a key that not every setting of a coupled choice sets)."""
        owner: dict[str, str] = {}
        for p in search:
            for k in p.sets():
                if k in owner:
                    raise self.err(f"search.{p.key}", f"sets {k}, which search.{owner[k]} also searches: give "
                                                      "each key one place")
                owner[k] = p.key
                every = not p.coupled or all(k in dict(s.values) for s in p.settings)
                if k in base and not p.when and every:
                    where = "" if k == p.key else f"sets {k}, which "
                    raise self.err(f"search.{p.key}", f"{where}is also fixed in base: remove one (a base value is "
                                                      "only allowed for a conditional key, as its value when inactive)")

    def conditions(self, search: tuple[Param, ...]) -> None:
        by_key = {p.key: p for p in search}
        for p in search:
            for k, vals in p.when:
                label = f"search.{p.key}.when.{k}"
                line = self.lines.get(f"search.{p.key}") or None
                parent = by_key.get(k)
                if k == p.key:
                    raise self.w.error(label, "a key cannot depend on itself", line)
                if parent is None:
                    raise self.w.error(label, f"'{k}' is not searched{did_you_mean(k, by_key)}; conditions "
                                              "refer to searched choice/grid keys", line)
                if not parent.discrete:
                    raise self.w.error(label, f"'{k}' is a {parent.kind} range; conditions need a choice or "
                                              "grid key", line)
                for v in vals:
                    if not contains(parent.options, v):
                        raise self.w.error(label, f"{k} never takes the value {v!r} (its values: "
                                                  f"{', '.join(map(repr, parent.options))})", line)
        try:
            topological(search)
        except CycleError as e:
            raise self.w.error(f"search.{e.key}.when", e.text, self.lines.get(f"search.{e.key}") or None) from None

    def alg(self, alg: SearchAlg, search: tuple[Param, ...], seeds: tuple[int, ...], seeds_line: int | None) -> None:
        """What the search algorithm can run: TPE no grid, a grid nothing continuous, weights only random."""
        for p in search:
            label = f"search.{p.key}"
            if alg.type == "optuna" and p.kind == "grid":
                raise self.err(label, "Optuna TPE cannot grid: use choice: [...] (or search_alg: {type: grid} "
                                      "to run every combination)")
            if alg.type == "grid" and not p.discrete:
                raise self.err(label, f"search_alg grid needs discrete values, but this is a {p.kind} "
                                      "distribution: list the values with grid: [...]")
            if getattr(p.distribution, "probabilities", None) is not None and alg.type != "random":
                raise self.err(label, f"probabilities need search_alg random (W&B's method random): {alg.type} "
                                      "would not draw by them")
        gridded = [p for p in search if p.kind == "grid" or (alg.type == "grid" and p.discrete)]
        if alg.type == "random" and gridded and len(seeds) > 1:
            # Tune's generator draws the random keys anew for every grid point, seeds included.
            keys = ", ".join(p.key for p in gridded)
            raise self.w.error("seeds", f"with search_alg random and grid keys ({keys}) each seed would get "
                                        "other random values: use choice instead of grid, or one seed", seeds_line)
        if any(p.when for p in gridded):
            self.warnings.append("conditional grid keys run every combination: trials that differ only in an "
                                 "inactive key are duplicates")

    def seeds_with_asha(self, sched: Scheduler, seeds: tuple[int, ...], seeds_line: int | None) -> None:
        """Several seeds and ASHA: ASHA would judge each seed's trial alone (Ray's Repeater advises
        against it), and the leaderboard's group means would mix trials stopped at different epochs."""
        if sched.type == "asha" and len(seeds) > 1:
            raise self.w.error("seeds", f"{len(seeds)} seeds with scheduler asha: ASHA would stop each seed's trial "
                                        "on its own and the group means would mix epochs; use scheduler: {type: "
                                        "none}, or search with one seed and re-train the best configurations over "
                                        "more seeds afterwards", seeds_line)


def _unchecked_pairs(keys: tuple[str, ...], setters: tuple[str, ...], search: tuple[Param, ...],
                     base: dict[str, Any]) -> str:
    """The warning for linked keys whose pairs are not all checked; it names only the searched ones."""
    searched = [k for k in keys if any(k in p.sets() for p in search if p.key in setters)]
    fixed = [k for k in keys if k not in searched]
    if not fixed:
        return (f"{' and '.join(keys)} are searched over too many values to check every pair: trials that draw "
                "a pair the trainer rejects will fail")
    against = " and ".join(f"{k}, fixed at {base[k]!r}" if k in base else f"{k}, fixed at its default"
                           for k in fixed)
    return (f"{' and '.join(searched)} {'is' if len(searched) == 1 else 'are'} searched over too many values to "
            f"check each against {against} (a range is checked at its ends): trials that draw a value the "
            "trainer rejects will fail")
