"""Video files at the boundary: uint8 clips ``(T, H, W, C)`` <-> ``.gif``, ``.mp4`` and PNG frame strips.

This module owns every video file diffusio reads or writes: decoding (GIF through Pillow, ``.mp4``
and other containers through the ffmpeg binary that ``imageio-ffmpeg`` ships), encoding through
:func:`diffusio._io.atomic_path`, converting channels, and resampling a clip to a model's shape (a
folder of a user's clips: :mod:`diffusio.video.folder`).  Inside the library a clip is a uint8 array
``(T, H, W, C)`` with ``C`` = 1 (grey) or 3 (RGB) and ``T >= 1``.

>>> import tempfile, pathlib
>>> clip = np.zeros((4, 8, 8, 1), np.uint8)
>>> clip[:, 2:6, 2:6] = 255
>>> path = write_video(clip, pathlib.Path(tempfile.mkdtemp()) / "box.gif")
>>> np.array_equal(read_video(path), clip)
True
"""

from __future__ import annotations

import io
import math
import os
import re
import struct
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence, UnidentifiedImageError

from diffusio._io import atomic_path, atomic_write_bytes, check_output
from diffusio.errors import UsageError
from diffusio.generative.data.images import MAX_PIXELS, decode_image, make_grid, png_bytes

VIDEO_SUFFIXES = (".gif", ".mp4", ".png")  # what write_video writes
FFMPEG_SUFFIXES = (".mp4", ".avi", ".mov", ".m4v", ".mkv", ".webm")  # containers read through ffmpeg
READ_SUFFIXES = (".gif", ".png") + FFMPEG_SUFFIXES  # what read_video reads
CLIP_SUFFIXES = (".gif",) + FFMPEG_SUFFIXES  # what load_clip_folder picks up: PNGs there are usually stills

MAX_CLIP_BYTES = 1 << 30  # decoded pixels one clip may take (a short file can decode to gigabytes)
MAX_GIF_FPS = 50  # GIF delays are whole centiseconds and viewers slow down anything under 2
MP4_CRF = 18  # x264 quality: near-transparent, still small for diffusion-sized frames

_PIL_ERRORS = (OSError, EOFError, SyntaxError, ValueError, Image.DecompressionBombError)
_GIF_NOTE = re.compile(rb"diffusio fps=(\d+(?:\.\d*)?(?:e[+-]?\d+)?) frames=(\d+)")
_SIZE_NOTE = re.compile(r"^\s*comment\s*:\s*diffusio size=(\d+)x(\d+)\s*$", re.M)


# ---------------------------------------------------------------------------- clips in memory

def _as_clip(clip, what: str = "clip") -> np.ndarray:
    """``clip`` as a 4-D uint8 array ``(T, H, W, C)``, or a UsageError naming what it got."""
    try:
        arr = np.asarray(clip)
    except ValueError as err:  # ragged nested lists
        raise UsageError(f"{what} is not an array ({err}); give a uint8 numpy array (T, H, W, C)") from None
    if arr.dtype != np.uint8:
        hint = " (for floats in [0, 1] use (clip * 255).round().astype(np.uint8))" if arr.dtype.kind == "f" else ""
        raise UsageError(f"{what} has dtype {arr.dtype}; it needs uint8 pixels 0-255{hint}")
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4 or arr.shape[3] not in (1, 3) or min(arr.shape[:3]) < 1:
        raise UsageError(f"{what} has shape {tuple(np.shape(clip))}; it needs (T, H, W) or (T, H, W, C) with "
                         "C = 1 (grey) or 3 (RGB) and T, H, W >= 1")
    return arr


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise UsageError(f"{name} must be a whole number >= 1; got {value!r}")
    return int(value)


def _check_size(size) -> tuple[int, int]:
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        raise UsageError(f"size must be (height, width); got {size!r}")
    return _positive_int(size[0], "size height"), _positive_int(size[1], "size width")


def _check_channels(channels) -> int:
    if isinstance(channels, bool) or channels not in (1, 3):
        raise UsageError(f"channels must be 1 (grey) or 3 (RGB); got {channels!r}")
    return int(channels)


def to_channels(clip: np.ndarray, channels: int) -> np.ndarray:
    """``clip`` with ``channels`` channels: grey is repeated into RGB; RGB becomes grey by ITU-R 601
    luma (0.299 R + 0.587 G + 0.114 B, rounded).

    >>> red = np.zeros((1, 1, 1, 3), np.uint8); red[..., 0] = 255
    >>> to_channels(red, 1).ravel().tolist(), to_channels(to_channels(red, 1), 3).shape
    ([76], (1, 1, 1, 3))
    """
    clip, channels = _as_clip(clip), _check_channels(channels)
    if clip.shape[3] == channels:
        return clip
    if channels == 3:
        return np.repeat(clip, 3, axis=3)
    # integer weights in thousandths: exact rounding, and grey stays grey
    luma = clip.astype(np.uint32) @ np.array([299, 587, 114], np.uint32)
    return ((luma + 500) // 1000).astype(np.uint8)[..., None]


def resize_clip(clip: np.ndarray, frames: int | None, size: tuple[int, int] | None) -> np.ndarray:
    """``clip`` resampled to ``frames`` frames and ``size`` = (height, width) pixels; None keeps that axis.

    Time: output frame ``i`` is the input frame at the middle of its time slot (evenly spaced,
    repeating frames when stretching).  Space: Pillow's bilinear filter, which averages over the
    whole footprint when shrinking.

    >>> resize_clip(np.zeros((10, 32, 32, 3), np.uint8), 4, (16, 24)).shape
    (4, 16, 24, 3)
    """
    clip = _as_clip(clip)
    if frames is not None:
        frames = _positive_int(frames, "frames")
        clip = clip[((np.arange(frames) + 0.5) * len(clip) / frames).astype(int)]
    if size is None:
        return clip
    size = _check_size(size)
    if clip.shape[1:3] == size:
        return clip
    grey = clip.shape[3] == 1
    out = [np.asarray(Image.fromarray(f[..., 0] if grey else f).resize((size[1], size[0]), Image.BILINEAR))
           for f in clip]
    out = np.stack(out)
    return out[..., None] if grey else out


def _grey_if_equal(frames: np.ndarray) -> np.ndarray:
    """RGB frames whose three channels agree everywhere come back as one grey channel."""
    if np.array_equal(frames[..., 0], frames[..., 1]) and np.array_equal(frames[..., 1], frames[..., 2]):
        return np.ascontiguousarray(frames[..., :1])
    return frames


# ---------------------------------------------------------------------------- reading

def _check_count(path: Path, count: int, max_frames: int | None) -> None:
    if count == 0:
        raise UsageError(f"{path} holds no video frames; re-export it with at least one frame")
    if max_frames is not None and count > max_frames:
        raise UsageError(f"{path} has more than {max_frames} frames, the most allowed here; trim it to "
                         f"{max_frames} frames or fewer (or raise max_frames)")


def _check_budget(path: Path, nbytes: int) -> None:
    if nbytes > MAX_CLIP_BYTES:
        raise UsageError(f"{path} decodes to more than {MAX_CLIP_BYTES >> 30} GiB of pixels; shorten or "
                         "shrink it first, or pass max_frames")


def _read_gif(path: Path, max_frames: int | None) -> np.ndarray:
    frames, durations, note = [], [], None
    try:
        with Image.open(path) as img:
            if img.format != "GIF":
                raise UsageError(f"cannot read {path}: it is a {img.format} image, not a GIF; give it its "
                                 "real extension or re-export it as .gif")
            comment = img.info.get("comment")
            note = _GIF_NOTE.fullmatch(comment) if isinstance(comment, bytes) else None
            for k, frame in enumerate(ImageSequence.Iterator(img)):
                if frame.size[0] * frame.size[1] > MAX_PIXELS:
                    raise UsageError(f"{path} declares {frame.size[0]}x{frame.size[1]} pixels, more than the "
                                     f"{MAX_PIXELS:,} diffusio reads; shrink it first")
                if k and frame.size != frames[0].shape[1::-1]:
                    raise UsageError(f"cannot read {path}: frame {k} is {frame.size[0]}x{frame.size[1]} pixels but "
                                     f"frame 0 is {frames[0].shape[1]}x{frames[0].shape[0]}; every frame of a clip "
                                     "must have one size -- re-export it at one size")
                frames.append(np.asarray(frame.convert("RGB")))  # drops alpha; composites GIF deltas
                durations.append(frame.info.get("duration", 0))
                _check_budget(path, len(frames) * frames[0].nbytes)
                if max_frames is not None and len(frames) > max_frames:
                    break  # already too many: no need to decode the rest
    except UsageError:
        raise
    except UnidentifiedImageError:
        raise UsageError(f"cannot read {path}: it is not a GIF image; re-export it as .gif or .mp4") from None
    except _PIL_ERRORS as err:
        raise UsageError(f"cannot read {path} as a GIF ({err}); re-export it as .gif or .mp4") from None
    _check_count(path, len(frames), max_frames)
    clip = np.stack(frames)
    if note and 0 < (fps := float(note.group(1))) < math.inf:
        # Pillow merges identical consecutive frames into one longer one; our note restores them
        base_ms = 1000 / fps
        repeats = [max(1, round(d / base_ms)) for d in durations]
        if sum(repeats) == int(note.group(2)):
            _check_count(path, sum(repeats), max_frames)
            _check_budget(path, sum(repeats) * frames[0].nbytes)
            clip = np.repeat(clip, repeats, axis=0)
    return clip


def _ffmpeg() -> str:
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as err:
        raise UsageError(f"video files other than .gif need ffmpeg ({err}); pip install 'diffusio[video]' (imageio-ffmpeg), "
                         "or use .gif") from None


_FFMPEG_PROBLEM = re.compile(r"error|invalid|corrupt|partial file|not found|no such|unsupported|failed", re.I)


def _ffmpeg_reason(text: str) -> str:
    """The first line of an ffmpeg log that names a problem (its last lines are generic)."""
    lines = [re.sub(r"^(\[[^]]*\] *)+", "", line).strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    return next((line for line in lines if _FFMPEG_PROBLEM.search(line)), (lines or ["no message"])[-1])[:200]


def _read_ffmpeg(path: Path, max_frames: int | None) -> np.ndarray:
    """Decode through ffmpeg as a stream of PPM images: each names its own size, so no log parsing is
    needed for it; the log (kept in a file so a chatty ffmpeg cannot block on a full pipe) is only
    read for errors and for the true size diffusio notes in the .mp4s it pads."""
    cmd = [_ffmpeg(), "-hide_banner", "-nostdin", "-nostats", "-i", f"file:{path}", "-map", "0:v:0"]
    if max_frames is not None:
        cmd += ["-frames:v", str(max_frames + 1)]  # one more than allowed tells "too many" from "just enough"
    cmd += ["-f", "image2pipe", "-c:v", "ppm", "-pix_fmt", "rgb24", "pipe:1"]
    frames, stopped, broken, ended = [], False, False, False
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log)
        try:
            while magic := proc.stdout.readline():
                try:
                    w, h = map(int, proc.stdout.readline().split())
                except ValueError:
                    w = h = 0
                proc.stdout.readline()  # maxval: 255 for rgb24
                data = proc.stdout.read(w * h * 3)
                if magic != b"P6\n" or not data or len(data) < w * h * 3:
                    broken = True  # ffmpeg died mid-frame: its log says why
                    break
                frames.append(np.frombuffer(data, np.uint8).reshape(h, w, 3))
                if (max_frames is not None and len(frames) > max_frames) or len(frames) * len(data) > MAX_CLIP_BYTES:
                    stopped = True
                    break
            else:
                ended = True
        finally:
            proc.stdout.close()
            if not ended:
                proc.kill()  # we stopped reading early (or were interrupted): its output is not wanted
            status = proc.wait()
        log.seek(0)
        text = log.read().decode("utf-8", "replace")
    if not stopped and (status != 0 or broken):
        if "matches no streams" in text:
            raise UsageError(f"{path} holds no video stream (no frames); give a file with video in it")
        raise UsageError(f"cannot read {path} as a video (ffmpeg: {_ffmpeg_reason(text)}); re-export it as .mp4 "
                         "(H.264) or .gif")
    _check_count(path, len(frames), max_frames)
    _check_budget(path, len(frames) * frames[0].nbytes)
    if any(f.shape != frames[0].shape for f in frames):
        k = next(k for k, f in enumerate(frames) if f.shape != frames[0].shape)
        raise UsageError(f"cannot read {path}: frame {k} is {frames[k].shape[1]}x{frames[k].shape[0]} pixels but "
                         f"frame 0 is {frames[0].shape[1]}x{frames[0].shape[0]}; re-export it at one size")
    clip = np.stack(frames)
    if note := _SIZE_NOTE.search(text):
        w, h = int(note.group(1)), int(note.group(2))
        if 0 <= clip.shape[1] - h <= 1 and 0 <= clip.shape[2] - w <= 1:
            clip = clip[:, :h, :w]  # undo the even-size padding write_video added for yuv420p
    return clip


def _read_strip(path: Path, max_frames: int | None) -> np.ndarray:
    pixels = decode_image(path, "RGB", what=f"PNG strip {path}")
    h, w = pixels.shape[:2]
    if w % h:
        raise UsageError(f"cannot read {path} as a clip: it is {w}x{h} pixels, and a PNG strip is read as "
                         "square frames side by side, so its width must be a multiple of its height; "
                         "give a .gif or .mp4 instead")
    _check_count(path, w // h, max_frames)
    return np.ascontiguousarray(pixels.reshape(h, w // h, h, 3).transpose(1, 0, 2, 3))


def read_video(path: str | os.PathLike, *, max_frames: int | None = None) -> np.ndarray:
    """A video file -> uint8 clip ``(T, H, W, C)``: C = 1 when every pixel is grey, else 3 (alpha dropped).

    Reads ``.gif`` (Pillow), ``.mp4``/``.mov``/``.m4v``/``.avi``/``.mkv``/``.webm`` (ffmpeg), and a
    ``.png`` frame strip as written by :func:`write_video` -- a strip does not record its frame
    count, so it is read only when its width is a multiple of its height, as square frames side
    by side.  Refuses (UsageError) a missing file, a folder, another extension, an unreadable
    file, no frames, frames of different sizes, and more than ``max_frames`` frames.

    >>> import tempfile, pathlib
    >>> read_video(pathlib.Path(tempfile.mkdtemp()) / "clip.webp")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    diffusio.errors.UsageError: cannot read .../clip.webp: unknown video type '.webp'; give a file ending in .gif, .png, .mp4, ...
    """
    path = Path(path)
    if max_frames is not None:
        max_frames = _positive_int(max_frames, "max_frames")
    if path.is_dir():
        raise UsageError(f"{path} is a folder, not a video; give one video file inside it")
    suffix = path.suffix.lower()
    if suffix not in READ_SUFFIXES:
        raise UsageError(f"cannot read {path}: unknown video type {suffix or '(none)'!r}; give a file ending in "
                         f"{', '.join(READ_SUFFIXES)}")
    if not path.is_file():
        raise UsageError(f"no such video file: {path}; check the path")
    if suffix == ".gif":
        clip = _read_gif(path, max_frames)
    elif suffix == ".png":
        clip = _read_strip(path, max_frames)
    else:
        clip = _read_ffmpeg(path, max_frames)
    return _grey_if_equal(clip)


# ---------------------------------------------------------------------------- writing

def _check_fps(fps, suffix: str) -> float:
    if isinstance(fps, bool) or not isinstance(fps, (int, float, np.integer, np.floating)) \
            or not math.isfinite(fps) or fps <= 0:
        raise UsageError(f"fps must be a number > 0; got {fps!r}")
    if suffix == ".gif" and fps > MAX_GIF_FPS:
        raise UsageError(f"a GIF cannot show more than {MAX_GIF_FPS} frames a second (got fps={fps}); "
                         "lower fps or write .mp4")
    return float(fps)


def _gif_bytes(clip: np.ndarray, fps: float) -> bytes:
    images = [Image.fromarray(f[..., 0] if clip.shape[3] == 1 else f) for f in clip]
    buf = io.BytesIO()
    # the note lets read_video undo Pillow's merging of identical consecutive frames
    try:
        images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=1000 / fps, loop=0,
                       comment=f"diffusio fps={fps!r} frames={len(clip)}".encode())
    except (OverflowError, struct.error) as err:  # a frame shown longer than GIF's 655 s limit
        raise UsageError(f"cannot write a GIF at fps={fps} ({err}): a frame would show longer than 655 s; "
                         "raise fps or write .mp4") from None
    return buf.getvalue()


def _write_mp4(clip: np.ndarray, path: Path, fps: float) -> None:
    t, h, w, c = clip.shape
    rgb = clip if c == 3 else np.repeat(clip, 3, axis=3)
    # yuv420p needs even sides: pad with edge pixels (and note the true size) rather than let anything resize
    rgb = np.pad(rgb, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    exe = _ffmpeg()
    with atomic_path(path, suffix=".mp4") as tmp:
        cmd = [exe, "-y", "-nostdin", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", f"{rgb.shape[2]}x{rgb.shape[1]}", "-r", str(Fraction(fps).limit_denominator(100000)),
               "-i", "pipe:0", "-an", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", str(MP4_CRF),
               "-movflags", "+faststart", "-metadata", f"comment=diffusio size={w}x{h}", "-f", "mp4", f"file:{tmp}"]
        run = subprocess.run(cmd, input=rgb.tobytes(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if run.returncode != 0:
            raise UsageError(f"cannot write {path}: ffmpeg failed ({_ffmpeg_reason(run.stderr.decode('utf-8', 'replace'))}); "
                             "reinstall imageio-ffmpeg, or write a .gif")


def write_video(clip: np.ndarray, path: str | os.PathLike, *, fps: float = 8.0, scale: int = 1,
                force: bool = False, inputs: tuple = ()) -> Path:
    """Write a uint8 clip ``(T, H, W)`` or ``(T, H, W, C)`` (C = 1 or 3) atomically; returns the path.

    ``.gif``: a looping GIF at ``fps`` (at most 50; RGB frames are reduced to 256 colours each).
    ``.mp4``: H.264 (yuv420p, so odd sides are padded with edge pixels; :func:`read_video` crops
    them off again).  ``.png``: the frames side by side in one strip, no padding.  ``scale``
    enlarges every frame by whole pixels (nearest neighbour) so tiny clips are visible.

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "strip.png"
    >>> read_video(write_video(np.zeros((3, 4, 4), np.uint8), out, scale=2)).shape
    (3, 8, 8, 1)
    """
    path = check_output(path, inputs=inputs, force=force, suffixes=VIDEO_SUFFIXES)
    suffix = path.suffix.lower()
    clip = _as_clip(clip)
    fps = _check_fps(fps, suffix)
    scale = _positive_int(scale, "scale")
    if scale > 1:
        clip = clip.repeat(scale, axis=1).repeat(scale, axis=2)
    if suffix == ".png":
        frames = clip[..., 0] if clip.shape[3] == 1 else clip
        atomic_write_bytes(path, png_bytes(make_grid(frames, ncol=len(frames), pad=0)))
    elif suffix == ".gif":
        atomic_write_bytes(path, _gif_bytes(clip, fps))
    else:
        _write_mp4(clip, path, fps)
    return path
