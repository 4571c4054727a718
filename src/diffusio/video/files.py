"""The file-level tasks behind ``diffusio video``: generate a clip from text into GIF/MP4/PNG, and
denoise, fill or extend a clip file.  Every input and output path is checked before any work, the
input is read and checked against the model's frame size, and outputs are written atomically, so
a bad request writes nothing."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from diffusio._io import check_output
from diffusio.errors import UsageError
from diffusio.video.editing import DEFAULT_FILL_STRENGTH
from diffusio.video.generator import VideoGenerator
from diffusio.video.io import VIDEO_SUFFIXES, read_video, to_channels, write_video

MAX_INPUT_FRAMES = 1024


def parse_frames(spec: str, total: int) -> list[int]:
    """``"6-10"`` or ``"3,5,7-9"`` (frames counted from 1, ranges inclusive) -> indices from 0.

    >>> parse_frames("6-8", 16)
    [5, 6, 7]
    """
    out: set[int] = set()
    for part in str(spec).replace(" ", "").split(","):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise UsageError(f"--frames {spec!r}: give frame numbers from 1, e.g. 6-10 or 3,5,7-9")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if lo < 1 or hi < lo:
            raise UsageError(f"--frames {spec!r}: {part} is not a range of frames counted from 1 (low-high)")
        if hi > total:
            raise UsageError(f"--frames {spec!r}: frame {hi} is outside the clip, which has {total} frames (1-{total})")
        out.update(range(lo - 1, hi))
    return sorted(out)


def _outputs(output, strip, fps, scale, force, inputs=()):
    paths = [check_output(output, inputs=inputs, force=force, suffixes=VIDEO_SUFFIXES)]
    if strip:
        paths.append(check_output(strip, inputs=inputs, force=force, suffixes=(".png",), flag="--strip"))
    return lambda clip: [write_video(clip, p, fps=fps, scale=scale, force=force, inputs=inputs) for p in paths]


def generate_file(prompt: str | None, output: str | Path, *, model: str | Path = "moving-fashion", fps: float = 8.0,
                  scale: int = 4, strip: str | Path | None = None, force: bool = False, **options) -> np.ndarray:
    """Generate from ``prompt`` into ``output`` (.gif, .mp4 or a .png frame strip); with ``n`` > 1 the
    clips are tiled side by side.  ``strip``: also a PNG strip of the frames; ``options``:
    :meth:`VideoGenerator.generate`'s (``n``, ``frames``, ``steps``, ``guidance``, ``seed``, ``sampler``,
    ``motion_guidance``, ``garment_guidance``, ``redraws``, ``nudges``, ``motion_check``, ``consistency``)."""
    write = _outputs(output, strip, fps, scale, force)
    gen = VideoGenerator.load(model)
    clips = gen.generate(prompt, progress=True, **options)
    write(tile(clips))
    return clips


def tile(clips: np.ndarray, pad: int = 1) -> np.ndarray:
    """Clips (N, T, H, W, C) side by side as one clip (T, H, N*W + gaps, C)."""
    if len(clips) == 1:
        return clips[0]
    gap = np.full(clips.shape[1:3] + (pad, clips.shape[4]), 64, dtype=np.uint8)
    parts = [p for c in clips for p in (c, gap)][:-1]
    return np.concatenate(parts, axis=2)


def _read_for(gen: VideoGenerator, path: str | Path) -> np.ndarray:
    clip = read_video(path, max_frames=MAX_INPUT_FRAMES)
    if clip.shape[1:3] != (gen.size, gen.size):
        raise UsageError(f"{path}: frames are {clip.shape[2]}x{clip.shape[1]}; the model works on {gen.size}x{gen.size} "
                         "frames. Resize the clip, or train a model on clips like it (diffusio video train --data FOLDER)")
    return to_channels(clip, gen.channels)


def denoise_file(input: str | Path, output: str | Path, *, model: str | Path = "moving-fashion",
                 sigma: float | None = None, per_frame: bool = False, consistency: float | None = None,
                 fps: float = 8.0, scale: int = 1, force: bool = False) -> tuple[np.ndarray, float]:
    """Denoise a clip file (noise level ``sigma`` in pixels / 127.5, estimated when None; ``per_frame``
    and ``consistency``: see :meth:`VideoGenerator.denoise`); returns the clean clip and the noise
    level it was cleaned at."""
    from diffusio.video.editing import clip_noise_sigma

    write = _outputs(output, None, fps, scale, force, inputs=(input,))
    gen = VideoGenerator.load(model)
    clip = _read_for(gen, input)
    sigma = clip_noise_sigma(clip) if sigma is None else sigma
    clean = gen.denoise(clip, sigma, per_frame=per_frame, consistency=consistency)
    write(clean)
    return clean, sigma


def fill_file(input: str | Path, output: str | Path, frames: str, *, model: str | Path = "moving-fashion",
              prompt: str | None = None, steps: int | None = None, recon: float = 0.0,
              strength: float = DEFAULT_FILL_STRENGTH, seed: int = 0, fps: float = 8.0, scale: int = 1,
              force: bool = False) -> np.ndarray:
    """Regenerate the frames ``frames`` ("6-10", counted from 1) of a clip file, keeping the others."""
    write = _outputs(output, None, fps, scale, force, inputs=(input,))
    gen = VideoGenerator.load(model)
    clip = _read_for(gen, input)
    filled = gen.fill(clip, parse_frames(frames, len(clip)), prompt=prompt, steps=steps, recon=recon,
                      strength=strength, seed=seed)
    write(filled)
    return filled


def extend_file(input: str | Path, output: str | Path, frames: int, *, model: str | Path = "moving-fashion",
                prompt: str | None = None, steps: int | None = None, recon: float = 0.0, seed: int = 0,
                fps: float = 8.0, scale: int = 1, force: bool = False) -> np.ndarray:
    """A clip file continued by ``frames`` new frames."""
    write = _outputs(output, None, fps, scale, force, inputs=(input,))
    gen = VideoGenerator.load(model)
    longer = gen.extend(_read_for(gen, input), frames, prompt=prompt, steps=steps, recon=recon, seed=seed)
    write(longer)
    return longer
