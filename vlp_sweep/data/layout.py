"""Keypoint layouts: point names, named groups and the two shoulders used for normalisation.

A layout is stored in ``meta.json["layout"]`` as ``{"name", "names", "groups", "shoulders"}``;
``groups`` maps a group name (body, face, left_hand, right_hand) to point indices.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

HAND_POINTS = ("wrist", "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip", "index_mcp", "index_pip", "index_dip",
               "index_tip", "middle_mcp", "middle_pip", "middle_dip", "middle_tip", "ring_mcp", "ring_pip",
               "ring_dip", "ring_tip", "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip")


@dataclass(frozen=True)
class Layout:
    name: str
    names: tuple[str, ...]
    groups: dict[str, tuple[int, ...]] = field(default_factory=dict)
    shoulders: tuple[int, int] | None = None  # (left, right) indices, or None if the layout has none

    def to_meta(self) -> dict[str, Any]:
        d = asdict(self)
        d["names"] = list(self.names)
        d["groups"] = {k: list(v) for k, v in self.groups.items()}
        d["shoulders"] = list(self.shoulders) if self.shoulders else None
        return d

    @classmethod
    def from_meta(cls, d: dict[str, Any]) -> Layout:
        sh = d.get("shoulders")
        return cls(str(d["name"]), tuple(d["names"]), {k: tuple(v) for k, v in d.get("groups", {}).items()},
                   (int(sh[0]), int(sh[1])) if sh else None)


SYNTH_BODY = ("nose", "neck", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_hip", "right_hip")


def synthetic_layout() -> Layout:
    """8 body points + 2 x 21 hand points = 50 points, 2-D (the synthetic corpus)."""
    names = SYNTH_BODY + tuple(f"left_{p}" for p in HAND_POINTS) + tuple(f"right_{p}" for p in HAND_POINTS)
    nb, nh = len(SYNTH_BODY), len(HAND_POINTS)
    groups = {"body": tuple(range(nb)), "left_hand": tuple(range(nb, nb + nh)),
              "right_hand": tuple(range(nb + nh, nb + 2 * nh))}
    return Layout("synthetic-50", names, groups, (2, 3))
