"""A folder of a user's clips, brought to one shape for training, with optional captions from a
``file,caption`` CSV.  Files are read by :mod:`diffusio.video.io`; unreadable ones are skipped
and counted."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from diffusio._io import read_csv
from diffusio.errors import UsageError
from diffusio.video.io import (CLIP_SUFFIXES, _check_channels, _check_size, _positive_int, read_video, resize_clip,
                               to_channels)


def _read_captions(path: str | os.PathLike, names: list[str]) -> dict[str, str]:
    """File name -> caption from a ``file,caption`` CSV, with a caption for every one of ``names``."""
    fix = "save it as UTF-8 CSV with the header row file,caption"
    table = read_csv(path, fix=fix, dtype=str, keep_default_na=False)
    table.columns = [str(c).strip().lower() for c in table.columns]
    if not {"file", "caption"} <= set(table.columns):
        raise UsageError(f"{path} has the columns {', '.join(table.columns)}; it needs file and caption -- {fix}")
    captions: dict[str, str] = {}
    for file, caption in zip(table["file"], table["caption"]):
        name = Path(file.strip()).name  # a row may name the clip with its folder
        if captions.get(name, caption) != caption:
            raise UsageError(f"{path} gives {name} two different captions; keep one row per clip")
        captions[name] = caption
    missing = [n for n in names if n not in captions]
    if missing:
        more = f" (and {len(missing) - 1} more clips)" if len(missing) > 1 else ""
        raise UsageError(f"{path} has no caption for {missing[0]}{more}; add a row file,caption for every "
                         "clip in the folder, or move the clip out")
    return captions


def load_clip_folder(folder: str | os.PathLike, *, frames: int, size: tuple[int, int], channels: int,
                     captions: str | os.PathLike | None = None) -> tuple[np.ndarray, list[str] | None, list[str]]:
    """Every video in ``folder`` (sorted by name; ``.gif`` and the ffmpeg types of :data:`READ_SUFFIXES`,
    not ``.png``, not hidden files) at ``frames`` x ``size`` = (height, width) x ``channels``.

    Returns ``(clips, captions, names)``: uint8 ``(N, frames, H, W, channels)``, the captions aligned
    with the clips (None without a ``captions`` CSV of columns ``file,caption``; rows naming other
    files are ignored), and the file names.  Unreadable files are skipped with one warning.

    >>> import tempfile, pathlib
    >>> from diffusio.video.io import write_video
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = write_video(np.zeros((5, 8, 8), np.uint8), folder / "a.gif")
    >>> clips, text, names = load_clip_folder(folder, frames=2, size=(4, 4), channels=3)
    >>> clips.shape, text, names
    ((1, 2, 4, 4, 3), None, ['a.gif'])
    """
    folder = Path(folder)
    frames, size, channels = _positive_int(frames, "frames"), _check_size(size), _check_channels(channels)
    if not folder.is_dir():
        raise UsageError(f"no such folder: {folder}; give a folder of video clips")
    names = sorted(p.name for p in folder.iterdir()
                   if p.suffix.lower() in CLIP_SUFFIXES and not p.name.startswith(".") and p.is_file())
    if not names:
        raise UsageError(f"{folder} holds no video clips (files ending in {', '.join(CLIP_SUFFIXES)}); add some "
                         "or choose another folder")
    table = None if captions is None else _read_captions(captions, names)  # before decoding: fail fast
    clips, kept, skipped = [], [], []
    for name in names:
        try:
            clip = read_video(folder / name)
        except UsageError as err:
            skipped.append((name, str(err)))
            continue
        # convert channels on the smaller side of the resize
        clip = (resize_clip(to_channels(clip, 1), frames, size) if channels == 1
                else to_channels(resize_clip(clip, frames, size), channels))
        clips.append(clip)
        kept.append(name)
    if not clips:
        raise UsageError(f"none of the {len(names)} clips in {folder} could be read; the first, "
                         f"{skipped[0][0]}: {skipped[0][1]}")
    if skipped:
        warnings.warn(f"skipped {len(skipped)} of {len(names)} clips in {folder} that could not be read; "
                      f"the first, {skipped[0][0]}: {skipped[0][1]}", stacklevel=2)
    return np.stack(clips), (None if table is None else [table[n] for n in kept]), kept
