"""Reading one pose-format ``.pose`` file into plain arrays of its first person."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pose_format import Pose
from pose_format.pose_header import PoseHeader

from vlp_sweep.errors import UserError


@dataclass
class RawClip:
    """One clip as read: every point of the source, before a preset picks some."""

    keypoints: np.ndarray  # [T, K, C] person 0; missing points hold anything (conf or mask says so)
    confidence: np.ndarray  # [T, K], 0 = missing
    fps: float | None  # None: the source does not say
    header: PoseHeader  # point names (a stand-in header for arrays)
    channels: str  # coordinate letters, e.g. "XYZ", "XYZK" (MediaPipe with Kinect depth), "XY"
    people: int = 1  # people in the source; only the first is kept
    mask: np.ndarray | None = None  # [T, K, C] True = masked (missing) value, None = nothing masked

    def take(self, index: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
        """(keypoints [T, K', dims] float32, confidence [T, K'] float32) of the points ``index``;
        a point with a masked value gets confidence 0. Selecting first keeps the work to the kept points."""
        kp = self.keypoints[:, index, :dims].astype(np.float32)
        conf = self.confidence[:, index].astype(np.float32)
        if self.mask is not None:
            conf[self.mask[:, index, :dims].any(-1)] = 0
        return kp, conf


def read_pose(path: Path) -> RawClip:
    """Read ``path`` with pose-format; a damaged or foreign file is a :class:`UserError`."""
    try:
        buffer = path.read_bytes()
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    try:
        pose = Pose.read(buffer)
    except Exception as e:  # pose-format raises struct.error, TypeError, ValueError... on bad bytes
        raise UserError(f"{path}: not a readable .pose file (truncated or another format: "
                        f"{type(e).__name__})") from None
    data, conf = pose.body.data, np.asarray(pose.body.confidence)
    if data.ndim != 4 or conf.shape != data.shape[:3] or data.shape[2] != pose.header.total_points():
        raise UserError(f"{path}: inconsistent .pose body: data {data.shape}, confidence {conf.shape}, "
                        f"header {pose.header.total_points()} points")
    t, people, k, c = data.shape
    fps = float(pose.body.fps) if pose.body.fps and pose.body.fps > 0 else None
    channels = pose.header.components[0].format[:-1]
    if people == 0:  # no detections at all: an empty clip, reported as such by the caller
        empty = np.zeros((0, k, c), np.float32)
        return RawClip(empty, empty[..., 0], fps, pose.header, channels, 0)
    # views of person 0; pose-format masks missing points in the data and zeroes their confidence:
    # both are honoured, on the kept points only (see RawClip.take)
    mask = np.ma.getmask(data)
    return RawClip(np.ma.getdata(data)[:, 0], conf[:, 0], fps, pose.header, channels, people,
                   None if mask is np.ma.nomask else mask[:, 0])


def read_header(path: Path) -> PoseHeader:
    """Only the point names of a .pose file (for --array-layout FILE.pose)."""
    return read_pose(path).header
