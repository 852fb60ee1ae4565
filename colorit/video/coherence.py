"""Steady colour from frame to frame: each frame's chroma carried along the motion to the next, and
blended there with the network's new guess by how sure each of the two is.

Colorizing frames one by one makes colours flicker: every guess is made afresh, and a coat that was
brown in one frame may be blue in the next. Here the chroma of the previous coloured frame is warped
to the current one by dense optical flow on the working-size luminance (OpenCV's DIS), and the two
are averaged per pixel, each by its weight: the carried colour by the weight it has gathered so far
(as far as the warp can be trusted there), the network's by its own confidence. The carried weight
is capped at MAX_CARRIED_WEIGHT, so the colour follows the network's mean over the last few frames
and cannot drift away from it over a long shot. Where the warp cannot be trusted (the pixel came
from outside the frame, or its brightness does not match what the flow says it was: an occlusion, a
new object) the carried colour counts for nothing and the network's stands alone. A shot cut (a
jump in the luminance histogram) starts afresh.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

# A pixel's carried colour weighs at most this many fully sure network guesses: at the network's
# typical confidence of ~0.5 a new guess then moves the colour by ~1/9, so the colour is the mean of
# the last ~9 frames' guesses along the motion (its flicker and quality: benchmarks/bench_video.py).
MAX_CARRIED_WEIGHT = 4.0
# A network guess weighs at least this much, so a pixel of confidence 0 still moves, slowly.
MIN_GUESS_WEIGHT = 0.05
# Brightness mismatch (L units, after removing the frames' mean change, e.g. a film's exposure
# flicker) at which the warp is trusted exp(-1) ~ 0.37 as much as where it matches.
WARP_L_TOLERANCE = 4.0
# Total-variation distance (0..1) between consecutive frames' 64-bin luminance histograms from which
# the second frame opens a new shot; and the mean warp trust below which it does so whatever the
# histograms say (nothing of the last frame is found in it).
CUT_HISTOGRAM_DISTANCE = 0.35
CUT_MEAN_TRUST = 0.2
HISTOGRAM_BINS = 64
# DIS refuses images whose sides are both under this: so small a picture is taken as still.
MIN_FLOW_SIDE = 12
# The flow is refined down to the smallest pyramid level whose longer side is at least this many
# pixels (DIS' FAST preset stops at a quarter of the image: at 96x72 it followed a 24-pixel disc
# moving 3 pixels a frame at only 1.4 pixels a frame, and the colour stayed behind; at a half, 2.6).
# A 320x240 working image is so refined at a quarter (~1.5 ms a frame), a 176x144 one at a half.
FLOW_FINEST_SIDE = 80

Guess = Callable[[], tuple[np.ndarray, np.ndarray | None]]


def _as_8bit(L_work: np.ndarray) -> np.ndarray:
    return np.clip(L_work * 2.55 + 0.5, 0, 255).astype(np.uint8)


def _histogram(L8: np.ndarray) -> np.ndarray:
    counts = np.bincount((L8 >> 2).ravel(), minlength=HISTOGRAM_BINS).astype(np.float64)
    return counts / counts.sum()


def finest_scale(side: int) -> int:
    """The pyramid level the flow is refined down to (0: full size, 1: half, ...) for an image whose
    longer side is `side`: the smallest one whose longer side is still at least FLOW_FINEST_SIDE."""
    return max(0, int(math.log2(max(side, 1) / FLOW_FINEST_SIDE)))


class ColourCarry:
    """The running colour of one film at the working size. step() once per frame, in order.

    network_every: the network guesses on every n-th frame of a shot (and on its first); the frames
    between take the carried colour alone. The caller passes the guess as a function, so that it is
    only computed on the frames that use it.
    """

    def __init__(self, network_every: int = 1):
        if network_every < 1:
            raise ValueError(f"network_every must be at least 1, got {network_every}")
        self.network_every = network_every
        self.shots = 0
        self.guesses = 0
        self._flow = cv2.DISOpticalFlow.create(cv2.DISOpticalFlow_PRESET_FAST)
        self._flow_side = 0  # the longer side the finest scale was set for
        self._ab: np.ndarray | None = None  # [h, w, 2]: OpenCV's channel order
        self._weight: np.ndarray | None = None
        self._L8: np.ndarray | None = None
        self._histogram: np.ndarray | None = None
        self._since_guess = 0

    def step(self, L_work: np.ndarray, guess: Guess) -> np.ndarray:
        """ab [2, h, w] of the frame whose working-size luminance is L_work (0..100), from the carried
        colour and, on the frames that take one, guess() = (the network's ab [2, h, w], its confidence
        [h, w] or None)."""
        L8 = _as_8bit(L_work)
        histogram = _histogram(L8)
        carried = self._carried(L_work, L8, histogram)
        self._L8, self._histogram = L8, histogram
        if carried is None:
            self.shots += 1
            self._since_guess = 0
            ab, confidence = self._guess(guess)
            self._ab = np.ascontiguousarray(ab.transpose(1, 2, 0))
            self._weight = self._guess_weight(confidence, ab.shape[1:])
            return ab
        carried_ab, carried_weight = carried
        self._since_guess += 1
        if self._since_guess < self.network_every:
            self._ab, self._weight = carried_ab, carried_weight
            return np.ascontiguousarray(carried_ab.transpose(2, 0, 1))
        self._since_guess = 0
        ab, confidence = self._guess(guess)
        guess_weight = self._guess_weight(confidence, ab.shape[1:])
        total = carried_weight + guess_weight
        share = (guess_weight / total)[..., None]
        self._ab = carried_ab + share * (ab.transpose(1, 2, 0) - carried_ab)
        self._weight = np.minimum(total, np.float32(MAX_CARRIED_WEIGHT))
        return np.ascontiguousarray(self._ab.transpose(2, 0, 1))

    def _guess(self, guess: Guess) -> tuple[np.ndarray, np.ndarray | None]:
        self.guesses += 1
        return guess()

    @staticmethod
    def _guess_weight(confidence: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
        if confidence is None:
            return np.ones(shape, np.float32)
        return np.maximum(confidence, np.float32(MIN_GUESS_WEIGHT))

    def _carried(
        self, L_work: np.ndarray, L8: np.ndarray, histogram: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """(the previous frame's ab warped onto this one [h, w, 2], the weight it carries [h, w]), or
        None at the first frame and at a shot cut."""
        if self._ab is None or self._L8 is None or self._histogram is None or self._weight is None:
            return None
        if 0.5 * float(np.abs(histogram - self._histogram).sum()) > CUT_HISTOGRAM_DISTANCE:
            return None
        height, width = L8.shape
        # The flow from this frame to the previous one: where each pixel of this frame was.
        flow = np.zeros((height, width, 2), np.float32)
        if max(height, width) >= MIN_FLOW_SIDE:
            if self._flow_side != max(height, width):
                self._flow_side = max(height, width)
                self._flow.setFinestScale(finest_scale(self._flow_side))
            flow = np.asarray(self._flow.calc(L8, self._L8, flow))
        columns, rows = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
        map_x, map_y = columns + flow[..., 0], rows + flow[..., 1]
        ab, weight, previous_8bit = (
            np.asarray(cv2.remap(plane, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
            for plane in (self._ab, self._weight, self._L8)
        )
        previous_L = previous_8bit.astype(np.float32) / np.float32(2.55)
        mismatch = L_work - previous_L
        mismatch -= mismatch.mean()
        trust = np.exp(-np.square(mismatch / np.float32(WARP_L_TOLERANCE)))
        inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
        trust *= inside
        if float(trust.mean()) < CUT_MEAN_TRUST:
            return None
        return ab, weight * trust
