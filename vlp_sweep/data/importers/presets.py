"""Keypoint presets over pose-format headers: which points to keep, by NAME, and the resulting layout.

A preset is computed once per distinct header and gives the source indices to keep plus the
:class:`~vlp_sweep.data.layout.Layout` (point names ``COMPONENT/POINT``, groups body / face /
left_hand / right_hand, and the two shoulders the trainer normalises by).

Presets (each a subset of the one before):
    all         every point of the file (a POSE_WORLD_LANDMARKS component is always left out: it
                repeats the body in metres, another unit than the image coordinates)
    reduced     upper body (shoulders, elbows, wrists, hips), face contour (outline, brows, eyes,
                lips) and both hands: for MediaPipe Holistic exactly pose-format's reduce_holistic
                (178 points), for OpenPose 137 the same parts by name (111 points)
    hands-body  the reduced upper body and both hands, no face
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pose_format import Pose
from pose_format.numpy import NumPyPoseBody
from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions
from pose_format.utils.generic import detect_known_pose_format, pose_shoulders, reduce_holistic
from pose_format.utils.openpose import OpenPose_Components

from vlp_sweep.data.layout import Layout
from vlp_sweep.errors import UserError

PRESETS = ("all", "reduced", "hands-body")
IGNORED_COMPONENTS = ("POSE_WORLD_LANDMARKS",)
GENERIC = "generic"

# OpenPose parts kept by "reduced": the arms' chain and hips (no head points, no legs), and the face
# outline, eyebrows, eyes and lips (no nose line, no pupils) - the same parts as MediaPipe's contours.
OPENPOSE_UPPER_BODY = ("Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip",
                       "RHip", "LHip")
OPENPOSE_FACE_CONTOUR_PARTS = ("FB", "FEB", "FE", "FLO", "FLI")

# MediaPipe Holistic point names, for arrays that come without a header (mediapipe itself is not
# a dependency, and pose-format builds its holistic header from it).
_MP_PAIRED = ("SHOULDER", "ELBOW", "WRIST", "PINKY", "INDEX", "THUMB", "HIP", "KNEE", "ANKLE", "HEEL",
              "FOOT_INDEX")
MP_BODY = ("NOSE", "LEFT_EYE_INNER", "LEFT_EYE", "LEFT_EYE_OUTER", "RIGHT_EYE_INNER", "RIGHT_EYE",
           "RIGHT_EYE_OUTER", "LEFT_EAR", "RIGHT_EAR", "MOUTH_LEFT", "MOUTH_RIGHT") + tuple(
    f"{side}_{part}" for part in _MP_PAIRED for side in ("LEFT", "RIGHT"))
MP_HAND = ("WRIST", "THUMB_CMC", "THUMB_MCP", "THUMB_IP", "THUMB_TIP") + tuple(
    f"{finger}_{joint}" for finger in ("INDEX_FINGER", "MIDDLE_FINGER", "RING_FINGER", "PINKY")
    for joint in ("MCP", "PIP", "DIP", "TIP"))
MP_FACE_POINTS = 468


@dataclass(frozen=True)
class Selection:
    """What a preset keeps of one header: source point indices, in layout order, and the layout."""

    family: str  # pose-format's name of the header schema ("holistic", "openpose", ...) or "generic"
    index: np.ndarray  # [K'] int64 source indices
    layout: Layout


def header_key(header: PoseHeader) -> tuple[tuple[str, tuple[str, ...], str], ...]:
    return tuple((c.name, tuple(c.points), c.format) for c in header.components)


def family_of(header: PoseHeader) -> str:
    try:
        return str(detect_known_pose_format(header))
    except ValueError:  # pose-format does not know this schema: points stay unnamed beyond the header's
        return GENERIC


def group_of(component: str) -> str | None:
    """body / face / left_hand / right_hand from a component's name, None when it names none of them."""
    n = component.lower()
    if "hand" in n:
        return "left_hand" if "left" in n else "right_hand" if "right" in n else None
    if "face" in n:
        return "face"
    return "body" if "pose" in n or "body" in n else None


def _stub_pose(header: PoseHeader) -> Pose:
    """A one-frame pose, so that pose-format functions that take a Pose can be asked about a header."""
    k, d = header.total_points(), header.num_dims()
    data = np.ma.zeros((1, 1, k, d), dtype=np.float32)
    return Pose(header, NumPyPoseBody(fps=1, data=data, confidence=np.zeros((1, 1, k), dtype=np.float32)))


def _pairs(header: PoseHeader) -> list[tuple[str, str]]:
    return [(c.name, p) for c in header.components if c.name not in IGNORED_COMPONENTS for p in c.points]


def _reduced(header: PoseHeader, family: str) -> list[tuple[str, str]]:
    if family == "holistic":
        try:
            return _pairs(reduce_holistic(_stub_pose(header)).header)
        except (ValueError, IndexError) as e:  # a holistic header missing the points the reduction names
            raise UserError(f"preset 'reduced' does not fit this MediaPipe header ({e})") from None
    if family == "openpose":
        return [(c, p) for c, p in _pairs(header) if _openpose_reduced_keeps(group_of(c), p)]
    raise UserError(f"preset 'reduced' / 'hands-body' is defined for MediaPipe Holistic and OpenPose; "
                    f"this layout is {family} (use --preset all)")


def _openpose_reduced_keeps(group: str | None, point: str) -> bool:
    if group == "body":
        return point in OPENPOSE_UPPER_BODY
    if group == "face":
        return point.split("_")[0] in OPENPOSE_FACE_CONTOUR_PARTS
    return group in ("left_hand", "right_hand")


def kept_pairs(header: PoseHeader, preset: str, family: str) -> list[tuple[str, str]]:
    if preset not in PRESETS:
        raise UserError(f"--preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    if preset == "all":
        return _pairs(header)
    pairs = _reduced(header, family)
    return pairs if preset == "reduced" else [(c, p) for c, p in pairs if group_of(c) != "face"]


def _shoulders(header: PoseHeader, family: str, names: list[str]) -> tuple[int, int] | None:
    """(left, right) indices in the kept points, from pose-format's shoulder names for the schema."""
    if family == GENERIC:
        return None
    try:
        pair = pose_shoulders(header)
    except NotImplementedError:
        return None
    # pose-format gives (right, left); our layouts store (left, right)
    left, right = sorted(pair, key=lambda cp: not cp[1].lower().startswith("l"))
    try:
        return names.index(f"{left[0]}/{left[1]}"), names.index(f"{right[0]}/{right[1]}")
    except ValueError:
        return None


def select(header: PoseHeader, preset: str, generic_shoulders: tuple[int, int] | None = None) -> Selection:
    """The points ``preset`` keeps of ``header`` and their layout (shoulders found by name)."""
    family = family_of(header)
    if family == GENERIC and preset != "all":
        raise UserError(f"preset '{preset}' needs named points (MediaPipe Holistic or OpenPose); "
                        f"these points have no known layout (use --preset all)")
    pairs = kept_pairs(header, preset, family)
    position = {cp: i for i, cp in enumerate((c.name, p) for c in header.components for p in c.points)}
    index = np.array([position[cp] for cp in pairs], dtype=np.int64)
    names = [f"{c}/{p}" for c, p in pairs]
    groups: dict[str, list[int]] = {}
    for i, (comp, _) in enumerate(pairs):
        group = group_of(comp)
        if group is not None and family != GENERIC:
            groups.setdefault(group, []).append(i)
    shoulders = _shoulders(header, family, names) if family != GENERIC else generic_shoulders
    if generic_shoulders is not None:
        _check_given_shoulders(generic_shoulders, family, len(names))
    name = f"{family}-{preset}-{len(names)}" if family != GENERIC else f"points-{len(names)}"
    layout = Layout(name, tuple(names), {g: tuple(ix) for g, ix in groups.items()}, shoulders)
    return Selection(family, index, layout)


def _check_given_shoulders(pair: tuple[int, int], family: str, n_points: int) -> None:
    if family != GENERIC:
        raise UserError(f"--shoulders is for unnamed array points; this {family} layout names its own")
    if not all(0 <= i < n_points for i in pair) or pair[0] == pair[1]:
        raise UserError(f"--shoulders {pair[0]},{pair[1]}: need two different point indices "
                        f"in 0..{n_points - 1}")


def _component(name: str, points: Sequence[str], channels: str) -> PoseHeaderComponent:
    return PoseHeaderComponent(name, list(points), [], [], channels + "C")


def _channels(dims: int) -> str:
    return "XYZ"[:dims] if dims <= 3 else "XYZ" + "W" * (dims - 3)


def holistic_header(dims: int) -> PoseHeader:
    """MediaPipe Holistic's 543 points (body 33, face 468, hands 21 + 21) as a pose-format header."""
    ch = _channels(dims)
    comps = [_component("POSE_LANDMARKS", MP_BODY, ch),
             _component("FACE_LANDMARKS", [str(i) for i in range(MP_FACE_POINTS)], ch),
             _component("LEFT_HAND_LANDMARKS", MP_HAND, ch), _component("RIGHT_HAND_LANDMARKS", MP_HAND, ch)]
    return PoseHeader(0.1, PoseHeaderDimensions(1, 1, 1), comps)


def openpose_header(dims: int) -> PoseHeader:
    """OpenPose body 25 + face 70 + hands 21 + 21 (137 points), names from pose-format."""
    ch = _channels(dims)
    comps = [_component(c.name, c.points, ch) for c in OpenPose_Components]
    return PoseHeader(0.1, PoseHeaderDimensions(1, 1, 1), comps)


def generic_header(n_points: int, dims: int) -> PoseHeader:
    return PoseHeader(0.1, PoseHeaderDimensions(1, 1, 1),
                      [_component("POINTS", [str(i) for i in range(n_points)], _channels(dims))])


@functools.lru_cache(maxsize=8)
def known_headers(dims: int) -> dict[int, PoseHeader]:
    """Headers recognised by point count for arrays: 543 Holistic, its 178-point reduction, 137 OpenPose."""
    full = holistic_header(dims)
    return {543: full, 178: reduce_holistic(_stub_pose(full)).header, 137: openpose_header(dims)}
