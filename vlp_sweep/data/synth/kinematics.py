"""Rendering: hands by 2-D finger kinematics, arms by 2-link inverse kinematics, then into the pixel frame."""

from __future__ import annotations

import numpy as np

from vlp_sweep.data.synth.geometry import (
    BEND,
    BODY_XY,
    FOREARM,
    MCP_ANGLE,
    PALM,
    PHALANX,
    SPREAD_ANGLE,
    SWAP_LR,
    THUMB,
    UPPER_ARM,
)
from vlp_sweep.data.synth.motion import State
from vlp_sweep.data.synth.signers import Signers


def _dir(theta: np.ndarray) -> np.ndarray:
    """Unit vector of a hand-axis angle (0 = up, positive towards +x), shape [..., 2]."""
    return np.stack([np.sin(theta), -np.cos(theta)], axis=-1)


def render_hand(wrist: np.ndarray, shape: np.ndarray, angle: np.ndarray, size: np.ndarray,
                side: float) -> np.ndarray:
    """21 hand points ``[F, 21, 2]`` (HAND_POINTS order); ``side`` +1 puts the thumb towards +x."""
    f = len(wrist)
    out = np.empty((f, 21, 2))
    out[:, 0] = wrist
    sz = size[:, None, None]
    # Thumb: its direction swings across the palm as it curls; joints foreshorten as they bend.
    ct = shape[:, 0]
    cmc = wrist + 0.055 * size[:, None] * _dir(angle + side * 1.0)
    psi = angle + side * (0.9 - 1.1 * ct)
    bends = np.cumsum(ct[:, None] * np.array([0.4, 0.5, 0.5]), axis=1)  # [F, 3]
    steps = THUMB * np.cos(bends)  # [F, 3]
    pts = cmc[:, None] + sz * np.cumsum(steps[..., None] * _dir(psi)[:, None], axis=1)
    out[:, 1], out[:, 2:5] = cmc, pts
    # Fingers: MCP on the palm, then three phalanges whose projected length shrinks with the curl.
    mcp_dir = _dir(angle[:, None] + side * MCP_ANGLE)  # [F, 4, 2]
    mcp = wrist[:, None] + sz * PALM[None, :, None] * mcp_dir
    phi = angle[:, None] + side * SPREAD_ANGLE * (0.4 + shape[:, 5:6])  # [F, 4]
    beta = np.cumsum(shape[:, 1:5, None] * BEND, axis=2)  # [F, 4, 3]
    along = PHALANX * np.cos(beta)
    across = PHALANX * 0.25 * np.sin(beta)  # a little of the folded finger shows beside the palm
    sideways = _dir(phi - side * np.pi / 2)[:, :, None]
    disp = along[..., None] * _dir(phi)[:, :, None] + across[..., None] * sideways
    joints = mcp[:, :, None] + sz[..., None] * np.cumsum(disp, axis=2)  # [F, 4, 3, 2]
    fingers = np.concatenate([mcp[:, :, None], joints], axis=2)  # [F, 4, 4, 2]
    out[:, 5:] = fingers.reshape(f, 16, 2)
    return out


def elbow(shoulder: np.ndarray, wrist: np.ndarray, outward: float) -> np.ndarray:
    """2-link inverse kinematics; of the two solutions, the elbow that points away from the body."""
    d = wrist - shoulder
    dist = np.linalg.norm(d, axis=1)
    r = np.clip(dist, abs(UPPER_ARM - FOREARM) + 1e-3, UPPER_ARM + FOREARM - 1e-3)
    cos_a = np.clip((UPPER_ARM ** 2 + r ** 2 - FOREARM ** 2) / (2 * UPPER_ARM * r), -1, 1)
    a = np.arccos(cos_a)
    base = np.arctan2(d[:, 1], d[:, 0])
    e1 = shoulder + UPPER_ARM * np.stack([np.cos(base + a), np.sin(base + a)], 1)
    e2 = shoulder + UPPER_ARM * np.stack([np.cos(base - a), np.sin(base - a)], 1)
    return np.where(((e1[:, 0] - e2[:, 0]) * outward > 0)[:, None], e1, e2)


def render_body(st: State, sway: np.ndarray) -> np.ndarray:
    """8 body points ``[F, 8, 2]``: the head nods, the upper body sways, a shoulder rises with its hand."""
    f = len(st.dom)
    body = np.broadcast_to(BODY_XY, (f, 8, 2)).copy()
    body[:, :6] += sway[:, None]
    body[:, 0, 1] += st.nod
    body[:, 0] += 0.3 * sway  # the head sways more than the shoulders
    body[:, 3, 1] += 0.06 * np.minimum(0.0, st.dom[:, 1] - 0.2)  # right (dominant) shoulder
    body[:, 2, 1] += 0.06 * np.minimum(0.0, st.nd[:, 1] - 0.2)
    body[:, 5] = elbow(body[:, 3], st.dom, -1.0)
    body[:, 4] = elbow(body[:, 2], st.nd, 1.0)
    return body


def to_pixels(points: np.ndarray, conf: np.ndarray, s: np.ndarray, sg: Signers,
              cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Body units -> pixels: mirror left-handers (swapping left/right names), shear and stretch by
    signer, rotate, scale, place."""
    lefty = sg.lefty[s]
    points, conf = points.copy(), conf.copy()
    points[lefty, :, 0] *= -1
    points[lefty] = points[lefty][:, SWAP_LR]
    conf[lefty] = conf[lefty][:, SWAP_LR]
    c, si = np.cos(sg.rotation[s])[:, None], np.sin(sg.rotation[s])[:, None]
    y = points[..., 1] * sg.aspect[s][:, None]
    x = points[..., 0] + sg.shear[s][:, None] * y
    w = sg.width[s][:, None]
    px = sg.centre[s, 0][:, None] + cam[:, 0:1] + w * (c * x - si * y)
    py = sg.centre[s, 1][:, None] + cam[:, 1:2] + w * (si * x + c * y)
    return np.stack([px, py], axis=-1), conf
