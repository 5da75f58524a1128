"""Decode recordings with PyAV and measure what a viewer would see and hear."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image

from tapedeck_dev.media import COLORS

RATE = 48000


@dataclass(frozen=True)
class Probe:
    video_codec: str
    audio_codec: str
    width: int
    height: int
    fps: float
    video_seconds: float
    audio_seconds: float
    frame_times: np.ndarray  # seconds
    audio: np.ndarray  # mono float, 48 kHz, from t=0


def probe(path: Path) -> Probe:
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        vcodec, acodec = video.codec_context.name, audio.codec_context.name
        width, height = video.codec_context.width, video.codec_context.height
        times = np.array([float(f.pts * f.time_base) for f in container.decode(video=0)])
    samples = audio_samples(path)
    frame_step = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    return Probe(
        vcodec,
        acodec,
        width,
        height,
        1 / frame_step if frame_step else 0.0,
        float(times[-1] + frame_step) if len(times) else 0.0,
        len(samples) / RATE,
        times,
        samples,
    )


def audio_samples(path: Path) -> np.ndarray:
    """The first audio stream, mono float at 48 kHz."""
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        chunks = [
            r.to_ndarray().reshape(-1)
            for f in container.decode(audio=0)
            for r in resampler.resample(f)
        ]
    return np.concatenate(chunks) if chunks else np.zeros(0)


def frames_at(path: Path, times: list[float]) -> dict[float, np.ndarray]:
    """rgb24 frames at (just after) each of `times`, in one decoding pass."""
    wanted = sorted(times)
    out: dict[float, np.ndarray] = {}
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            t = float(frame.pts * frame.time_base)
            while wanted and t + 1e-6 >= wanted[0]:
                out[wanted.pop(0)] = frame.to_ndarray(format="rgb24")
            if not wanted:
                break
    return out


def ocr(image: np.ndarray, *, single_char: bool = False) -> str:
    """What tesseract reads in an rgb24 image (one line, or one character), scaled up 3x:
    it reads best at letters about 30 px high."""
    tesseract = shutil.which("tesseract")
    assert tesseract is not None, "tesseract is not installed: apt-get install tesseract-ocr"
    picture = Image.fromarray(image).convert("L")
    picture = picture.resize((picture.width * 3, picture.height * 3), Image.Resampling.LANCZOS)
    with tempfile.NamedTemporaryFile(suffix=".png") as png:
        picture.save(png.name)
        letters = ["-c", "tessedit_char_whitelist=ABCDEFGHIJKLMNOPQRSTUVWXYZ"]
        read = subprocess.run(
            [tesseract, png.name, "stdout", "--psm", "10" if single_char else "7"]
            + (letters if single_char else []),
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
            # OpenMP threads crawl when the cores are busy with the publishers.
            env={**os.environ, "OMP_THREAD_LIMIT": "1"},
        )
    return read.stdout.strip()


def nearest_colour(rgb: np.ndarray) -> str:
    return min(COLORS, key=lambda name: float(np.sum((np.array(COLORS[name]) - rgb) ** 2)))


def region_colour(image: np.ndarray, x: int, y: int, w: int, h: int) -> np.ndarray:
    """Median colour of the middle of a region (avoiding edges and the moving bar's share)."""
    region = image[y + h // 4 : y + 3 * h // 4 : 4, x + w // 4 : x + 3 * w // 4 : 4].reshape(-1, 3)
    median: np.ndarray = np.median(region, axis=0)
    return median


def tone_levels(samples: np.ndarray, freqs: list[float]) -> dict[float, float]:
    """Energy near each frequency relative to the strongest of them (dB, 0 = strongest)."""
    window = samples * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(window))
    bins = np.fft.rfftfreq(len(samples), 1 / RATE)
    energy = {f: float(spectrum[(bins > f - 15) & (bins < f + 15)].max()) for f in freqs}
    top = max(energy.values()) or 1.0
    return {f: 20 * np.log10(max(e, 1e-9) / top) for f, e in energy.items()}


def rms(samples: np.ndarray, start: float, end: float) -> float:
    """Root-mean-square level of the samples in [start, end) seconds."""
    window = samples[int(start * RATE) : int(end * RATE)]
    assert len(window) > 0.2 * RATE, (start, end)
    return float(np.sqrt(np.mean(window**2)))


def onsets(
    values: np.ndarray, times: np.ndarray, threshold: float, min_gap: float = 0.5
) -> list[float]:
    """Times where `values` rises through `threshold`, at least `min_gap` apart."""
    found: list[float] = []
    above = values > threshold
    for i in np.flatnonzero(above[1:] & ~above[:-1]) + 1:
        if not found or times[i] - found[-1] >= min_gap:
            found.append(float(times[i]))
    return found


def band_envelope(
    samples: np.ndarray, freq: float, hop: int = 48, size: int = 240
) -> tuple[np.ndarray, np.ndarray]:
    """Energy at `freq` in `size`-sample windows (240: 5 ms) every `hop` samples.

    Longer windows separate nearby tones better and blur onsets more. Returns (times, energy).
    """
    n = np.arange(size)
    probe_wave = np.exp(-2j * np.pi * freq * n / RATE) * np.hanning(size)
    starts = np.arange(0, len(samples) - size, hop)
    frames = np.lib.stride_tricks.sliding_window_view(samples, size)[starts]
    energy = np.abs(frames @ probe_wave)
    return (starts + size / 2) / RATE, energy
