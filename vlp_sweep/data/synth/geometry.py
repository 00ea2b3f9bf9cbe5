"""Signing space and body geometry: constants in body units (origin at the shoulder centre,
shoulder width 1, y down, canonical right-handed signer), and the pixel frame."""

from __future__ import annotations

import numpy as np

ANCHORS = np.array([  # dominant-hand wrist locations in signing space
    [-0.25, 0.70], [-0.05, 0.45], [-0.08, -0.30], [-0.10, -0.70], [-0.35, -0.45],
    [-0.60, 0.45], [-0.20, 1.00], [0.30, 0.15], [-0.40, -0.05]])
HANDSHAPES = np.array([  # curl of thumb, index, middle, ring, pinky (0 open, 1 closed) + spread
    [0.6, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 1.0], [0.2, 1.0, 1.0, 1.0, 1.0, 0.0],
    [0.8, 1.0, 1.0, 1.0, 1.0, 0.0], [0.8, 0.0, 1.0, 1.0, 1.0, 0.2], [0.8, 0.0, 0.0, 1.0, 1.0, 0.8],
    [0.0, 1.0, 1.0, 1.0, 0.0, 1.0], [0.0, 0.0, 1.0, 1.0, 1.0, 0.6], [0.4, 0.5, 0.5, 0.5, 0.5, 0.2],
    [0.6, 0.75, 0.75, 0.75, 0.75, 0.0], [0.8, 0.0, 0.0, 0.0, 1.0, 0.7], [0.8, 1.0, 1.0, 1.0, 0.0, 0.3]])
RELAXED = np.array([0.3, 0.35, 0.4, 0.45, 0.5, 0.1])
REST_XY = np.array([-0.42, 1.1])  # dominant hand at rest; the other hand rests at the mirror image
BODY_XY = np.array([[0, -0.62], [0, -0.08], [0.5, 0], [-0.5, 0], [0.75, 0.6], [-0.75, 0.6],
                    [0.32, 1.5], [-0.32, 1.5]])  # SYNTH_BODY order; elbows are replaced by IK
UPPER_ARM, FOREARM = 0.62, 0.6
PALM = np.array([0.19, 0.19, 0.18, 0.17])  # wrist -> MCP of index, middle, ring, pinky
MCP_ANGLE = np.array([0.22, 0.07, -0.08, -0.22])  # towards the thumb side is positive
SPREAD_ANGLE = np.array([0.2, 0.06, -0.08, -0.22])
PHALANX = np.array([0.105, 0.065, 0.05])[None, :] * np.array([0.95, 1.05, 0.98, 0.78])[:, None]  # [4, 3]
BEND = np.array([1.3, 1.5, 1.0])  # radians per joint at full curl
THUMB = np.array([0.075, 0.06, 0.05])

FRAME_PX = 1000.0  # the raw coordinates live in a 1000 x 1000 pixel frame

SWAP_LR = np.r_[0, 1, 3, 2, 5, 4, 7, 6, np.arange(29, 50), np.arange(8, 29)]  # mirror image: left <-> right
