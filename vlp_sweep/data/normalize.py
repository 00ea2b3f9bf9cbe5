"""Per-frame keypoint normalisation shared by every source: shoulder-centre origin, shoulder width 1.

Raw coordinates stay on disk; the trainer normalises once at load time, so synthetic and imported
data go through exactly this code. Missing points (confidence 0) become 0 and a visibility channel
is appended, so the model sees ``[x, y(, z), visible]`` per point.
"""

from __future__ import annotations

import torch


def normalize_keypoints(kp: torch.Tensor, conf: torch.Tensor, clip_of_frame: torch.Tensor, n_clips: int,
                        shoulders: tuple[int, int] | None) -> torch.Tensor:
    """Normalise ``kp [F, K, C]`` with ``conf [F, K]``; returns ``[F, K, C + 1]`` float32.

    Frames whose shoulders are missing borrow the mean origin/scale of their clip's frames that
    have them; a clip with no visible shoulders at all is left in raw units, centred on its points.
    """
    kp = kp.float()
    vis = (conf > 0).float()  # [F, K]
    if shoulders is None:
        origin, scale = _clip_centre(kp, vis, clip_of_frame, n_clips)
    else:
        left, right = shoulders
        ok = (vis[:, left] * vis[:, right]) > 0  # [F]
        origin = (kp[:, left] + kp[:, right]) / 2  # [F, C]
        scale = (kp[:, left, :2] - kp[:, right, :2]).norm(dim=-1)  # [F]
        ok = ok & (scale > 1e-6)
        fb_origin, fb_scale = _clip_fallback(origin, scale, ok, clip_of_frame, n_clips, kp, vis)
        origin = torch.where(ok[:, None], origin, fb_origin)
        scale = torch.where(ok, scale, fb_scale)
    out = (kp - origin[:, None, :]) / scale.clamp(min=1e-6)[:, None, None]
    out = out * vis[..., None]
    return torch.cat([out, vis[..., None]], dim=-1)


def _segment_mean(x: torch.Tensor, w: torch.Tensor, seg: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted mean of rows of ``x`` per segment; returns (mean [n, ...], weight sum [n])."""
    shape = (n,) + tuple(x.shape[1:])
    wx = x * w.view(-1, *([1] * (x.dim() - 1)))
    total = torch.zeros(shape, dtype=x.dtype, device=x.device).index_add_(0, seg, wx)
    wsum = torch.zeros(n, dtype=x.dtype, device=x.device).index_add_(0, seg, w)
    return total / wsum.clamp(min=1e-12).view(-1, *([1] * (x.dim() - 1))), wsum


def _clip_centre(kp: torch.Tensor, vis: torch.Tensor, seg: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Origin = mean of a clip's visible points; scale 1 (no anatomical reference available)."""
    frame_mean = (kp * vis[..., None]).sum(1) / vis.sum(1, keepdim=True).clamp(min=1)  # [F, C]
    has = (vis.sum(1) > 0).float()
    clip_mean, _ = _segment_mean(frame_mean, has, seg, n)
    return clip_mean[seg], torch.ones(len(kp), device=kp.device)


def _clip_fallback(origin: torch.Tensor, scale: torch.Tensor, ok: torch.Tensor, seg: torch.Tensor, n: int,
                   kp: torch.Tensor, vis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    w = ok.float()
    clip_origin, wsum = _segment_mean(origin, w, seg, n)
    clip_scale, _ = _segment_mean(scale, w, seg, n)
    centre_origin, centre_scale = _clip_centre(kp, vis, seg, n)
    has = (wsum > 0)[seg]
    fb_origin = torch.where(has[:, None], clip_origin[seg], centre_origin)
    fb_scale = torch.where(has, clip_scale[seg], centre_scale)
    return fb_origin, fb_scale
