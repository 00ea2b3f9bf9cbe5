"""Option E augmentation on normalised keypoints, batched on the device (training only).

Works on frames of any layout (packed or padded): ``k [F, K, C+1]`` with ``clip_of [F]`` naming each
frame's clip, so that the per-clip draws (one affine per clip) reach all its frames.
"""

from __future__ import annotations

import math

import torch

from vlp_sweep.config import AugConfig


def augment_keypoints(k: torch.Tensor, clip_of: torch.Tensor, n_clips: int, aug: AugConfig,
                      gen: torch.Generator | None) -> torch.Tensor:
    """``k [F, K, C+1]``: coordinates then a visibility channel. Returns a new tensor.

    One random 2-D affine per clip (rotation, scale, shear), Gaussian noise on visible points, and
    random joint masking (coordinates and visibility zeroed, as a detector miss would look).
    """
    dev = k.device
    coords, vis = k[..., :-1].float(), k[..., -1:].float()
    if aug.rotation_deg > 0 or aug.scale > 0 or aug.shear > 0:
        coords = _affine(coords, aug, clip_of, n_clips, dev, gen)
    if aug.keypoint_noise > 0:
        noise = torch.randn(coords.shape, device=dev, generator=gen) * aug.keypoint_noise
        coords = coords + noise * vis
    if aug.joint_mask_prob > 0:
        keep = (torch.rand(vis.shape, device=dev, generator=gen) >= aug.joint_mask_prob).float()
        vis = vis * keep
        coords = coords * keep
    return torch.cat([coords * vis, vis], dim=-1).to(k.dtype)


def _affine(coords: torch.Tensor, aug: AugConfig, clip_of: torch.Tensor, b: int, dev: torch.device,
            gen: torch.Generator | None) -> torch.Tensor:
    def u(scale: float) -> torch.Tensor:  # uniform in [-scale, scale], one per clip
        return (torch.rand(b, device=dev, generator=gen) * 2 - 1) * scale

    theta = u(math.radians(aug.rotation_deg))
    s = 1 + u(aug.scale)
    sh = u(aug.shear)
    cos, sin = torch.cos(theta), torch.sin(theta)
    # M = R(theta) @ [[s, sh], [0, s]]: rotation of a sheared, scaled pose.
    m = torch.stack([torch.stack([cos * s, cos * sh - sin * s], -1),
                     torch.stack([sin * s, sin * sh + cos * s], -1)], -2)  # [B, 2, 2]
    xy = torch.einsum("fij,fkj->fki", m[clip_of], coords[..., :2])
    return torch.cat([xy, coords[..., 2:]], dim=-1)
