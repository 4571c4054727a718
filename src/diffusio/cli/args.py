"""argparse value types shared by every command group: bad values fail with a message naming the flag."""

from __future__ import annotations

import argparse

from diffusio.errors import UsageError


def int_at_least(name: str, low: int):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}")
        if value < low:
            raise argparse.ArgumentTypeError(f"{name} must be >= {low}, got {value}")
        return value
    return parse


def positive_int(name: str):
    return int_at_least(name, 1)


def non_negative_int(name: str):
    return int_at_least(name, 0)


MAX_SEED = 2 ** 32 - 1


def seed_int(text: str) -> int:
    """``--seed``: an integer in [0, 2^32) for every command (numpy, torch and the samplers all take it).

    >>> seed_int("7")
    7
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seed must be an integer in [0, {MAX_SEED}], got {text!r}")
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"--seed must be an integer in [0, {MAX_SEED}], got {value}")
    return value


def positive_int_at_most(name: str, high: int):
    """A whole number in [1, high]: for factors whose output grows with their square or more (--scale)."""
    base = positive_int(name)

    def parse(text):
        value = base(text)
        if value > high:
            raise argparse.ArgumentTypeError(f"{name} must be at most {high}, got {value}")
        return value
    return parse


def non_negative_float(name: str, high: float = float("inf")):
    """A finite number in [0, high] (nan and inf are refused: they only ever make garbage)."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}")
        if not (0 <= value <= high and value < float("inf")):
            raise argparse.ArgumentTypeError(f"{name} must be >= 0, got {value}" if high == float("inf")
                                             else f"{name} must be in [0, {high:g}], got {value}")
        return value
    return parse


def guidance_float(name: str = "--guidance"):
    from diffusio.generative.core.guidance import MAX_SCALE

    return non_negative_float(name, MAX_SCALE)


def int_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 1,2,2, got {text!r}")


def name_list(text: str) -> tuple[str, ...]:
    """``"brightness,width"`` -> ``("brightness", "width")``."""
    return tuple(v.strip() for v in text.split(",") if v.strip())


def add_run_options(p: argparse.ArgumentParser, every: int) -> None:
    """What every resumable training command takes: a time budget, a checkpoint interval, a seed,
    --resume and --quiet."""
    p.add_argument("--minutes", type=non_negative_float("--minutes"), default=None,
                   help="stop earlier, cleanly, after this many minutes")
    p.add_argument("--every", type=positive_int("--every"), default=every,
                   help=f"checkpoint interval in steps (default {every})")
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_cooldown_option(p: argparse.ArgumentParser) -> None:
    """--cooldown, for every training command with a learning-rate schedule."""
    p.add_argument("--cooldown", type=non_negative_float("--cooldown", 1.0), default=0.0, metavar="FRACTION",
                   help="let the learning rate fall linearly to zero over this last fraction of --steps "
                        "(warmup-stable-decay; 0: constant, 1: the whole run decays); keep --steps when resuming")


def add_guide_options(p: argparse.ArgumentParser) -> None:
    """--autoguidance, --guide, --classifier-guidance and --redraws, for every command that samples a generative
    image model."""
    p.add_argument("--autoguidance", type=guidance_float("--autoguidance"), default=None, metavar="W",
                   help="guide away from --guide, a weaker version of the model (Karras et al. 2024); 1 = off "
                        "(default: the model's)")
    p.add_argument("--guide", default=None, metavar="MODEL",
                   help="the weaker model of --autoguidance: a shipped name or run directory (default: the model's)")
    p.add_argument("--classifier-guidance", type=guidance_float("--classifier-guidance"), default=None, metavar="W",
                   help="steer each image toward the class its prompt or label names with the model's class guide "
                        "(classifier guidance); 0 = off (default: the model's; `diffusio class-guide` trains one)")
    p.add_argument("--redraws", type=non_negative_int("--redraws"), default=None, metavar="N",
                   help="draw again, up to N times, each image in which the model's class guide does not see the "
                        "class its prompt or label names; 0 = never (default: the model's)")
    p.add_argument("--redraw-below", type=class_bar, action="append", default=None, metavar="CLASS=P",
                   help="redraw an image of CLASS only when the class guide names it with probability under P "
                        "(default 0.8, or the model's own bar; repeat for more classes), e.g. --redraw-below Shirt=0.3 "
                        "--redraw-below 'Ankle boot=0.5'")


def add_nudge_option(p: argparse.ArgumentParser) -> None:
    """--nudges and --autoguidance-interval, for the commands that sample a text model's images one by
    one (generate, evaluate)."""
    p.add_argument("--autoguidance-interval", type=interval, default=None, metavar="LO,HI",
                   help="autoguide only where LO < sigma <= HI, the model alone elsewhere (one network pass a "
                        "step); 'all' everywhere (default: the model's)")
    p.add_argument("--nudges", type=scales, default=None, metavar="W[,W...]",
                   help="the first redraw rounds start again from the image's own noise, steered toward its class "
                        "by classifier guidance at these scales (e.g. 2,4), so it changes only as much as it must; "
                        "later rounds draw new noise; 'none': every round new noise (default: the model's, else none)")


def scales(text: str) -> tuple[float, ...]:
    """``--nudges``: ``"2,4"`` -> ``(2.0, 4.0)`` (the library checks them against --redraws); ``"none"``
    -> ``()``, to turn off a model's own nudges (a tuple: an empty list is argparse's dropped ``--``).

    >>> scales("2, 4"), scales("none")
    ((2.0, 4.0), ())
    """
    if text.strip().lower() == "none":
        return ()
    try:
        out = tuple(float(part) for part in text.split(","))
    except ValueError:
        out = ()
    if not out or not all(0 < w < float("inf") for w in out):
        raise argparse.ArgumentTypeError(f"write scales > 0 separated by commas (e.g. 2,4), or none; got {text!r}")
    return out


def class_bar(text: str) -> tuple[str, float]:
    """``--redraw-below``: ``"Shirt=0.3"`` -> ``("Shirt", 0.3)`` (the class is checked by the library).

    >>> class_bar("Ankle boot=0.5")
    ('Ankle boot', 0.5)
    """
    name, sep, value = text.rpartition("=")
    try:
        bar = float(value)
    except ValueError:
        bar = None
    if not sep or not name.strip() or bar is None or not 0 <= bar <= 1:
        raise argparse.ArgumentTypeError(f"write CLASS=P with P a probability in [0, 1] (e.g. Shirt=0.3), got {text!r}")
    return name.strip(), bar


def redraw_bars(args: argparse.Namespace) -> dict[str, float] | None:
    """The ``--redraw-below`` options as one mapping, or None for the model's own; a class given twice is refused."""
    if not args.redraw_below:
        return None
    bars = dict(args.redraw_below)
    if len(bars) < len(args.redraw_below):
        raise UsageError(f"--redraw-below names a class twice ({', '.join(n for n, _ in args.redraw_below)}); "
                         "give each class once")
    return bars


def add_watermark_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--watermark", action="store_true",
                   help="mark the images with an invisible watermark: the default; the key is $DIFFUSIO_WATERMARK_KEY "
                        "or the public default; check with 'diffusio watermark detect'")
    p.add_argument("--watermark-key", default=None, metavar="KEY", help="mark with this key")
    p.add_argument("--no-watermark", action="store_true", help="do not mark the images")


def watermark_choice(args) -> bool | str | None:
    """What ``Generator.generate(watermark=...)`` takes, from the three options above."""
    if args.no_watermark and (args.watermark_key or args.watermark):
        raise UsageError("--no-watermark contradicts --watermark/--watermark-key; drop one")
    if args.watermark_key is not None and not args.watermark_key.strip():
        raise UsageError("--watermark-key is empty; give a key, or drop the flag to mark with the default key")
    if args.no_watermark:
        return False
    return args.watermark_key or (True if args.watermark else None)


def interval(text: str) -> tuple[float, float]:
    """``"0.3,5"`` -> ``(0.3, 5.0)``; ``"all"`` -> guidance at every noise level."""
    if text.strip().lower() == "all":
        return (0.0, float("inf"))
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"write the interval as LO,HI (noise levels, e.g. 0.3,5) or all, got {text!r}")
    if not (0 <= lo < hi):
        raise argparse.ArgumentTypeError(f"the interval needs 0 <= LO < HI, got {text!r}")
    return lo, hi


def optional_output(path: str | None, suffix: str):
    """``-o`` checked before any work (:func:`diffusio._io.check_output`), or None when not given."""
    from diffusio._io import check_output

    return None if path is None else check_output(path, suffixes=(suffix,))
