"""The dataset check of ``validate`` and ``run``: the data every trial can use exists and fits the space.

The manifest and arrays are memory-mapped; their values are scanned once for NaN and inf, as ``data info``
does (a dataset with one makes every trial fail: better one line now; about a second per GB). While the
manifest is open, the training-set sizes feed the schedule check
(``schedule_check``): warnings when ASHA would judge a warmup or a cosine decay before it acts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vlp_sweep.errors import UserError
from vlp_sweep.space.spec import SweepSpec
from vlp_sweep.space.yaml_lines import Where

if TYPE_CHECKING:  # loaded in check_data: validating a space reads no array until the data check
    from vlp_sweep.data.packed import PackedDataset


@dataclass(frozen=True)
class DataCheck:
    """What ``check_data`` found: one summary line per dataset, and warnings (one line each)."""

    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def check_data(spec: SweepSpec) -> DataCheck:
    """Check that every dataset a trial can use exists and fits the space: ``data.path`` (fixed or
    searched; relative paths from the current directory) is a packed dataset with the train and
    eval splits (and the confirmation's held-out split), and has siglip.npy when a trial can turn
    ``data.use_siglip`` on; a model factory of your own builds and embeds a few clips (``model_check``);
    then the schedule check on the training-set sizes. Raises a one-line UserError naming the key."""
    from vlp_sweep.data.packed import load_packed
    from vlp_sweep.space import wandb_format
    from vlp_sweep.space.schedule_check import schedule_warnings

    where = Where(spec.source, wandb_format.LABELS if spec.format == "wandb" else None)
    label = _label(spec, "data.path")
    train, evs = spec.fixed("data.train_split"), spec.fixed("data.eval_split")
    out, sizes, first = DataCheck(), [], None
    for path in dict.fromkeys(spec.possible_values("data.path")):
        try:
            ds = load_packed(str(path), mmap=True, check_values=True)  # NaN/inf refused as `data info` does
            first = first or ds
            counts = {s: len(ds.split(s)) for s in dict.fromkeys((train, evs))}
        except UserError as e:
            raise _error(spec, where, label, str(e)) from None
        if ds.siglip is None and True in spec.possible_values("data.use_siglip"):
            raise _error(spec, where, _label(spec, "data.use_siglip"),
                         f"{path} has no siglip.npy, so trials cannot use SigLIP features "
                         "(set data.use_siglip: false, or make the data with SigLIP features)")
        if spec.confirm is not None:
            counts[spec.confirm.split] = _held_out(ds, spec, where)
        sizes.append(counts[train])
        split_text = ", ".join(f"{s} {n}" for s, n in counts.items())
        out.lines.append(f"{path}: {len(ds.manifest)} clips ({split_text}), {ds.n_points} points x {ds.dims}, "
                         f"siglip {'dim ' + str(ds.siglip_dim) if ds.siglip is not None else 'none'}")
    out.lines.extend(_model_line(spec, where, first))
    try:
        out.warnings.extend(schedule_warnings(spec, sizes))
    except UserError as e:
        key = str(e).split(":")[0]
        raise _error(spec, where, key, str(e)[len(key) + 2:]) from None
    return out


def _model_line(spec: SweepSpec, where: Where, ds: Any) -> list[str]:
    """A model factory of your own, built and run on a few clips of ``ds`` (``model_check``)."""
    from vlp_sweep.space.model_check import check_model

    try:
        line = check_model(spec, ds)
    except UserError as e:
        raise _error(spec, where, "base.model.factory", str(e)) from None
    return [line] if line else []


def _held_out(ds: PackedDataset, spec: SweepSpec, where: Where) -> int:
    """Clips of the confirmation's held-out split; a dataset without it is an error on ``confirm.split``."""
    assert spec.confirm is not None
    try:
        return len(ds.split(spec.confirm.split))
    except UserError as e:
        raise _error(spec, where, "confirm.split", str(e)) from None


def _label(spec: SweepSpec, key: str) -> str:
    p = spec.setter(key)
    return f"search.{p.key}" if p is not None else f"base.{key}"


def _error(spec: SweepSpec, where: Where, label: str, message: str) -> UserError:
    return where.error(label, message, dict(spec.lines).get(label) or None)
