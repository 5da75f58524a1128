"""Mix participants' audio, and pick the active speaker from the same blocks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = ["SpeakerTracker", "mix"]

_SPEAKING_LEVEL = 0.003  # RMS in full-scale units


def mix(blocks: list[np.ndarray], channels: int) -> np.ndarray:
    """Sum n x 2 int16 blocks without wrapping; `channels` 1 averages left and right."""
    if not blocks:
        raise ValueError("mix needs at least one block (pass silence for an empty room)")
    total = np.sum([b.astype(np.int32) for b in blocks], axis=0)
    if channels == 1:
        total = total.mean(axis=1, keepdims=True)
    clipped: np.ndarray = np.clip(total, -32768, 32767).astype(np.int16)
    return clipped


def level(block: np.ndarray) -> float:
    """RMS of a block, in full-scale units (0..1)."""
    return float(np.sqrt(np.mean(block.astype(np.float32) ** 2))) / 32768.0


@dataclass
class SpeakerTracker:
    """The loudest participant, smoothed so the big tile does not flicker.

    Levels are averaged over about `smoothing_s`; a new speaker must stay loudest for
    `hold_s` before the layout switches to them.
    """

    block_s: float = 0.02
    smoothing_s: float = 0.5
    hold_s: float = 1.0
    speaker: str | None = None
    _levels: dict[str, float] = field(default_factory=dict)
    _candidate: str | None = None
    _candidate_since: float = 0.0
    _heard: bool = False
    _quiet_since: float | None = None

    @property
    def speaking(self) -> str | None:
        """The speaker while heard: from above about -50 dBFS until `hold_s` below half of
        that (a pause between words keeps them outlined; silence has nobody)."""
        return self.speaker if self._heard else None

    def update(self, now: float, levels: Mapping[str, float]) -> str | None:
        alpha = min(1.0, self.block_s / self.smoothing_s)
        self._levels = {
            p: (1 - alpha) * self._levels.get(p, 0.0) + alpha * v for p, v in levels.items()
        }
        if not self._levels:
            self.speaker = None
            return None
        loudest = max(self._levels, key=lambda p: self._levels[p])
        if self.speaker not in self._levels:
            self.speaker = loudest
        if loudest == self.speaker:
            self._candidate = None
        elif loudest != self._candidate:
            self._candidate, self._candidate_since = loudest, now
        elif now - self._candidate_since >= self.hold_s:
            self.speaker, self._candidate = loudest, None
        self._hear(now, self._levels.get(self.speaker or "", 0.0))
        return self.speaker

    def _hear(self, now: float, level: float) -> None:
        if level >= _SPEAKING_LEVEL:
            self._heard, self._quiet_since = True, None
        elif level < _SPEAKING_LEVEL / 2:
            self._quiet_since = now if self._quiet_since is None else self._quiet_since
            if now - self._quiet_since >= self.hold_s:
                self._heard = False
