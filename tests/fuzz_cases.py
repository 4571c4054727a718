"""Hypothesis strategies for the end-to-end fuzz of issue 26: every CLI command's arguments and
every studio endpoint's body.  Shared by tests/cli/test_fuzz_commands.py and
tests/studio/test_fuzz_studio.py (small budget, in-process) and bench/probe.py (large budget,
subprocesses with a timeout).

A CLI case is a command's tiny, valid base argv with one to three of its arguments replaced by
drawn values.  Each drawn value knows whether it is valid (``True``), invalid (``False``: the command
must refuse it, exit non-zero) or unknown (``None``: any clean end will do).  Arguments written
``@name`` are paths inside the case's own folder; ``files`` holds the input files to write there
first (bytes, or ``"model:tabular"`` for a folder the harness prepares once).
"""

from __future__ import annotations

import io
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st


@dataclass(frozen=True)
class Value:
    text: str | None  # None: leave the option out
    valid: bool | None
    note: str = ""


@dataclass
class Case:
    command: str
    argv: list[str]
    files: dict[str, object] = field(default_factory=dict)
    invalid: list[str] = field(default_factory=list)  # why the command must refuse it (empty: it may succeed)
    unknown: bool = False  # a value without an oracle was drawn: any clean end is right

    def __repr__(self) -> str:  # what hypothesis prints for a failing example: a command to paste
        files = {k: (v if isinstance(v, str) else f"<{len(v)} bytes>") for k, v in self.files.items()}
        return f"Case({self.argv!r}, files={files}, invalid={self.invalid})"


# ---------------------------------------------------------------- values
JUNK = ["", " ", "x", "nan", "inf", "-inf", "1e400", "0x10", "1,2", "a=b", "\u00e9", "--", "1.5.2"]


def V(text, valid, note=""):
    return Value(None if text is None else str(text), valid, note)


def ints(lo: int = 1, small: int = 3, hi: int | None = None, huge: bool | None = None) -> st.SearchStrategy[Value]:
    """Integers >= lo; valid draws stay below lo + small so that the work stays tiny.  ``huge``: also
    draw huge values (a clean refusal or a quick run are both right; a traceback or hang is not) --
    for options whose memory can be checked before the work, not for those that only take longer."""
    valid = st.integers(lo, lo + small - 1).map(lambda v: V(v, True))
    bad = [lo - 1, lo - 2, -(10 ** 12), "1.5", "nan", "x", "", "1e3"]
    if hi is not None:
        bad.append(hi + 1)
    options = [valid, st.sampled_from(bad).map(lambda v: V(v, False, "out of range or not an integer"))]
    if huge:
        options.append(st.sampled_from([10 ** 9, 10 ** 12, 2 ** 63, "9" * 40]).map(lambda v: V(v, None, "huge")))
    return st.one_of(*options)


def seeds() -> st.SearchStrategy[Value]:
    return st.one_of(st.integers(0, 2 ** 32 - 1).map(lambda v: V(v, True)),
                     st.sampled_from([-1, 2 ** 32, 2 ** 64, "1.5", "x", ""]).map(lambda v: V(v, False, "seed")))


def floats(lo: float = 0.0, hi: float | None = None, lo_open: bool = False, hi_open: bool = False,
           cap: float | None = None, nan_ok: bool = False) -> st.SearchStrategy[Value]:
    """Finite numbers in the documented range [lo, hi] (open ends as given); nan, inf and values outside
    are invalid.  Valid draws stay below ``cap`` (cost)."""
    top = hi if hi is not None else (cap if cap is not None else 1e6)
    if cap is not None:
        top = min(top, cap)
    valid = st.floats(lo, top, exclude_min=lo_open, exclude_max=hi_open and top == hi, allow_nan=False,
                      allow_infinity=False).map(lambda v: V(repr(v), True))
    bad = ["nan", "inf", "-inf", "x", "", repr(lo - 1), repr(lo - 1e-3), "-1e300"]
    if lo_open:
        bad.append(repr(lo))
    if hi is not None:
        bad += [repr(hi + 1), repr(hi * 10 + 1), "1e300"]
        if hi_open:
            bad.append(repr(hi))
    return st.one_of(valid, valid, st.sampled_from(bad).map(lambda v: V(v, False, "not a number in range")))


def minutes(zero_ok: bool = False) -> st.SearchStrategy[Value]:
    """A time limit in minutes: inf (no limit) may be accepted or refused; nan, negatives and text not."""
    valid = st.floats(0 if zero_ok else 0.01, 5).map(lambda v: V(repr(v), True))
    return st.one_of(valid, st.sampled_from(["nan", "-1", "x", ""]).map(lambda v: V(v, False, "not a time")),
                     st.sampled_from(["inf"] + ([] if zero_ok else ["0"])).map(lambda v: V(v, None)))


def choice(good, bad=("magic", "", "X" * 80)) -> st.SearchStrategy[Value]:
    return st.one_of(st.sampled_from(list(good)).map(lambda v: V(v, True)),
                     st.sampled_from(list(bad)).map(lambda v: V(v, False, "not a choice")))


def anything(extra=()) -> st.SearchStrategy[Value]:
    """Text without an oracle: any clean end is right."""
    return st.one_of(st.text(max_size=40), st.sampled_from(JUNK + list(extra))).map(lambda v: V(v, None))


def fixed(*values: Value) -> st.SearchStrategy[Value]:
    return st.sampled_from(list(values))


def text_prompt() -> st.SearchStrategy[Value]:
    return st.one_of(st.text(max_size=60), st.sampled_from(["a bag", "", " ", "\x00", "\u202e", "a" * 5000])).map(
        lambda v: V((" " + v) if v.startswith("-") else v, None))


def out_path(suffix: str, inputs=()) -> st.SearchStrategy[Value]:
    """An output: a fresh file (valid), a folder, or one of the inputs (must be refused without --force)."""
    return st.one_of(st.just(V(f"@out{suffix}", True)),
                     st.sampled_from([V("@", False, "-o is a folder")] + [V(f"@{i}", False, "-o is an input")
                                                                         for i in inputs]),
                     st.sampled_from([V("@out.weird", None), V("@no/such/folder/out" + suffix, None)]))


# ---------------------------------------------------------------- input files
def png(pixels: np.ndarray, mode: str = "L") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buf, "PNG")
    return buf.getvalue()


@st.composite
def images(draw, size=(28, 28)) -> tuple[bytes, bool | None]:
    """(file bytes, valid): the model's size, other sizes and modes, garbage, empty."""
    kind = draw(st.sampled_from(["good", "good", "size", "mode", "garbage", "empty", "truncated"]))
    h, w = size
    if kind in ("good", "truncated"):
        data = png(draw(st.sampled_from([0, 128, 255])) * np.ones(size, np.uint8))
        return (data, True) if kind == "good" else (data[: draw(st.integers(0, len(data) - 1))], False)
    if kind == "size":
        hh, ww = draw(st.integers(1, 64)), draw(st.integers(1, 64))
        return png(np.full((hh, ww), 90, np.uint8)), None  # resized or refused: either is clean
    if kind == "mode":
        return png(np.full((h, w), 90, np.uint8), draw(st.sampled_from(["RGB", "RGBA", "1", "LA", "P"]))), None
    if kind == "empty":
        return b"", False
    return draw(st.binary(min_size=1, max_size=300)), False


@st.composite
def clips(draw) -> tuple[bytes, bool | None]:
    from PIL import Image

    kind = draw(st.sampled_from(["good", "good", "size", "one", "garbage"]))
    if kind == "garbage":
        return draw(st.binary(max_size=200)), False
    n = 1 if kind == "one" else draw(st.integers(2, 4))
    side = 32 if kind != "size" else draw(st.integers(4, 64))
    frames = [Image.fromarray(np.full((side, side), 40 * i, np.uint8)) for i in range(n)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100)
    return buf.getvalue(), (True if kind == "good" else None)


CSV_JUNK = [b"", b"\x00\x01\xff\xfe", b"a,b\n", b",,,\n,,\n", b"1,2\n3\n", b"source,target\n", b"\xef\xbb\xbf1,2\n2,3\n"]


@st.composite
def edge_lists(draw) -> tuple[bytes, bool | None]:
    if draw(st.booleans()):
        n = draw(st.integers(2, 12))
        edges = {(draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))) for _ in range(draw(st.integers(1, 20)))}
        return "".join(f"{a},{b}\n" for a, b in edges).encode(), None  # self loops etc.: either is clean
    return draw(st.one_of(st.sampled_from(CSV_JUNK), st.binary(max_size=200),
                          st.text(alphabet="ab12,;\t\n -.#", max_size=80).map(str.encode))), None


@st.composite
def npy_latents(draw) -> tuple[bytes, bool | None]:
    kind = draw(st.sampled_from(["good", "shape", "nan", "text", "garbage", "object"]))
    buf = io.BytesIO()
    if kind == "good":
        np.save(buf, np.random.default_rng(0).standard_normal((1, 1, 28, 28)).astype(np.float32) * 80)
    elif kind == "shape":
        np.save(buf, np.zeros(draw(st.sampled_from([(3,), (1, 28, 28), (1, 3, 28, 28), (0, 1, 28, 28), (2, 1, 5, 5)])),
                              np.float32))
    elif kind == "nan":
        np.save(buf, np.full((1, 1, 28, 28), draw(st.sampled_from([np.nan, np.inf, 1e30])), np.float32))
    elif kind == "text":
        np.save(buf, np.array(["a", "b"]))
    elif kind == "object":
        np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    else:
        return draw(st.binary(max_size=200)), False
    return buf.getvalue(), (True if kind == "good" else False)


def file_value(name: str, strategy) -> st.SearchStrategy[tuple[Value, dict]]:
    """A drawn input file under ``@name``: its Value and the files to write; or a missing path/folder."""
    return st.one_of(
        strategy.map(lambda dv: (V(f"@{name}", dv[1], "file content"), {name: dv[0]})),
        st.sampled_from([(V("@missing.file", False, "missing"), {}), (V("@", False, "a folder"), {})]))


# ---------------------------------------------------------------- commands
IMG = png(np.full((28, 28), 100, np.uint8))
IMG2 = png(np.full((28, 28), 200, np.uint8))


def _clip() -> bytes:
    from PIL import Image

    frames = [Image.fromarray(np.full((32, 32), 60 * i, np.uint8)) for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100)
    return buf.getvalue()


CLIP = _clip()
WATERMARK_KEY = st.one_of(st.text(min_size=1, max_size=20).filter(str.strip).map(lambda v: V(v, True)),
                         st.sampled_from([V("", False), V("  ", False)]))
VIDEO_MODEL = choice(["moving-fashion"], ["nope", "@missing", "", "fashion"])
VIDEO_EDIT = {"--fps": floats(0, 100, lo_open=True), "--prompt": text_prompt(), "--scale": ints(1, 2, huge=True),
              "--model": VIDEO_MODEL}
GEN = {"--model": choice(["fashion", "fashion-fast"], ["nope", "@missing", "@", "", "../../etc"]),
       "--steps": ints(1, 2, huge=False), "--seed": seeds()}
SAMPLERS = ["euler", "heun", "dpmpp-2m", "ddim", "ddpm", "unipc"]


@dataclass
class Command:
    base: list[str]
    options: dict  # flag (or ":N" for the N-th positional) -> strategy of Value, or of (Value, files)
    files: dict = field(default_factory=dict)
    heavy: bool = False  # valid runs too slow for the in-process CI fuzz: only invalid values there
    never_valid: bool = False  # a valid run does not end (serve): every case must carry an invalid value


def recovery() -> st.SearchStrategy[Value]:
    """A recovery probability.  Known and not fixed here (spread/simulate.py): a tiny positive one
    (1e-45) makes SIR/SEIR "run to the end" for minutes, so valid draws are 0 or at least 1e-4."""
    return st.one_of(st.just(V("0", True)), floats(0, 1).filter(lambda v: v.valid is not True or float(v.text) >= 1e-4))


def spread_params(model: str) -> dict:
    prob = floats(0, 1)
    rate = floats(0, None, cap=5)
    params = {"ic": {"--p": prob}, "lt": {"--threshold": prob}, "si": {"--beta": prob},
              "sis": {"--beta": prob, "--gamma": prob}, "sir": {"--beta": prob, "--gamma": recovery()},
              "seir": {"--beta": prob, "--gamma": recovery(), "--sigma": recovery()},
              "sir-ct": {"--beta": rate, "--gamma": rate, "--dt": floats(0, None, lo_open=True, cap=5)},
              "sis-ct": {"--beta": rate, "--gamma": rate, "--dt": floats(0.1, None, cap=5)},
              "bass": {"--p": prob, "--q": prob}, "voter": {"--initial-yes": prob},
              "majority": {"--initial-yes": prob}, "threshold": {"--initial-yes": prob, "--threshold": prob}}
    return params[model]


GRAPHS = choice(["karate", "erdos-renyi:n=20,p=0.2", "barabasi-albert:n=20,m=2"],
                ["nope", "erdos-renyi:n=10.5,p=0.1", "erdos-renyi:n=20,p=2", "erdos-renyi:n=-3,p=0.1",
                 "erdos-renyi:n=10**9,p=0.5", "erdos-renyi:q=0.1", "@missing.csv", ""])
SPREAD = {"--graph": st.one_of(GRAPHS, file_value("edges.csv", edge_lists())), "--seed": seeds(),
          "--trials": ints(1, 5)}


def commands() -> dict[str, Command]:
    opt_img = file_value("in.png", images())
    return {
        "generate": Command(["generate", "a bag", "-n", "1", "--steps", "1", "-o", "@out.png"], {
            ":1": text_prompt(), "-n": ints(1, 2, huge=True), **GEN,
            "--label": choice(["Bag", "3", "0"], ["99", "-1", "nope", "3.5", ""]),
            "--sampler": choice(SAMPLERS), "--schedule": choice(["karras", "exponential", "vp-trailing"]),
            "--guidance": floats(0, 100), "--attr-guidance": floats(0, 100),
            "--early-stop": floats(0, None, lo_open=True, cap=1),
            "--tol": floats(0, None, lo_open=True, cap=1),
            "--attr": st.one_of(st.tuples(st.sampled_from(["brightness", "width", "height"]),
                                          st.floats(0, 1)).map(lambda t: V(f"{t[0]}={t[1]}", None)),
                                fixed(V("width=nan", False), V("width=2", False), V("width=-1", False),
                                      V("width", False), V("nope=0.5", False), V("=", False))),
            "--guidance-interval": st.one_of(fixed(V("all", True), V("0.3,5", True), V("0,1e9", True)),
                                             fixed(V("nan,1", False), V("1,0", False), V("-1,2", False),
                                                   V("x", False), V("1,inf", None), V("0,nan", False))),
            "--watermark-key": st.one_of(st.text(min_size=1, max_size=20).filter(str.strip).map(lambda v: V(v, True)),
                                         fixed(V("", False), V("  ", False))),
            "--no-watermark": fixed(V(None, True), V("", True)),
            "-o": out_path(".png"), "--scale": ints(1, 2, huge=True),
            "--latent": file_value("z.npy", npy_latents()),
            "--backend": choice(["torch"]), "--onnx": file_value("m.onnx", st.binary(max_size=100).map(lambda b: (b, False))),
        }),
        "demo": Command(["demo", "-n", "1", "--prompt", "a bag", "-o", "@out.png"], {
            "-n": ints(1, 1, huge=True), "--prompt": text_prompt(), "--seed": seeds(), "-o": out_path(".png"),
            "--model": GEN["--model"], "--watermark-key": WATERMARK_KEY}),
        "img2img": Command(["img2img", "@in.png", "a bag", "--steps", "1", "-o", "@out.png"], {
            ":1": opt_img, ":2": text_prompt(), "--strength": floats(0, 1), "--guidance": floats(0, 100),
            "-o": out_path(".png", ["in.png"]), **GEN}, files={"in.png": IMG}),
        "invert": Command(["invert", "@in.png", "--steps", "1", "-o", "@out.npy"], {
            ":1": opt_img, "-o": out_path(".npy", ["in.png"]), **GEN}, files={"in.png": IMG}),
        "interpolate": Command(["interpolate", "@in.png", "@b.png", "--frames", "2", "--steps", "1", "-o", "@out.png"], {
            ":1": opt_img, "--frames": ints(1, 3, huge=True), "--gif": out_path(".gif", ["b.png"]),
            "--prompt-a": text_prompt(), "-o": out_path(".png", ["in.png", "b.png"]), **GEN},
            files={"in.png": IMG, "b.png": IMG2}),
        "inpaint": Command(["inpaint", "@in.png", "--box", "0,0,14,14", "--steps", "1", "--resample", "1",
                            "-o", "@out.png"], {
            ":1": opt_img, "--mask": file_value("mask.png", images()),
            "--box": st.one_of(st.tuples(*[st.integers(0, 28)] * 4).map(
                lambda b: V(",".join(map(str, b)), None if b[0] < b[2] and b[1] < b[3] else False)),
                fixed(V("", False), V("1,2", False), V("a,b,c,d", False), V("0,0,99,99", None), V("-5,0,10,10", None),
                      V("0,0,1e9,5", False), V("nan,0,5,5", False))),
            "--resample": ints(1, 2), "--recon": floats(0, None, cap=50),
            "--class-from": choice(["auto", "model"], ["@missing", "nope", ""]),
            "--guidance": floats(0, 100), "-o": out_path(".png", ["in.png"]), **GEN}, files={"in.png": IMG}),
        "denoise": Command(["denoise", "@in.png", "--steps", "1", "-o", "@out.png"], {
            ":1": opt_img, "--sigma": floats(0, 1), "--method": choice(["mmse", "ode"]),
            "-o": out_path(".png", ["in.png"]), **GEN}, files={"in.png": IMG}),
        "watermark detect": Command(["watermark", "detect", "@in.png"], {
            ":2": opt_img, "--key": anything(), "--json": out_path(".json", ["in.png"]),
            "--model": GEN["--model"]}, files={"in.png": IMG}),
        "samplers": Command(["samplers"], {}),
        "evaluate": Command(["evaluate", "fashion-fast", "-n", "5", "--per-prompt", "1", "--steps", "1"], {
            ":1": choice(["fashion-fast"], ["nope", "@", ""]), "-n": ints(5, 1, huge=True),
            "--per-prompt": ints(1, 1, huge=True), "--guidance": floats(0, 100), "--seed": seeds(),
            "--steps": ints(1, 1), "--json": out_path(".json"), "--sampler": choice(SAMPLERS),
            "--guidance-interval": st.one_of(fixed(V("all", True), V("0.3,5", True)), fixed(V("1,0", False), V("x", False)))},
            heavy=True),
        "classifier": Command(["classifier", "--data", "digits", "--out", "@cls", "--epochs", "1"], {
            "--data": choice(["digits"], ["nope", "@missing", ""]), "--epochs": ints(1, 1),
            "--seed": seeds(), "--out": fixed(V("@cls", True), V("@in.png", False))},
            files={"in.png": IMG}, heavy=True),
        "train": Command(["train", "--data", "digits", "--out", "@run", "--steps", "1", "--batch-size", "2", "--base",
                          "8", "--mults", "1", "--attn-levels", "", "--every", "1", "--threads", "1", "--quiet"], {
            "--steps": ints(1, 2), "--batch-size": ints(1, 3, huge=True), "--lr": floats(0, 1, lo_open=True),
            "--ema-decay": floats(0, 1, hi_open=True), "--cond-dropout": floats(0, 1),
            "--attr-dropout": floats(0, 1), "--seed": seeds(), "--threads": ints(0, 2),
            "--base": ints(1, 8, huge=True), "--mults": st.one_of(fixed(V("1", True), V("1,2", True)),
                                                                fixed(V("0", False), V("1,-2", False), V("", False),
                                                                      V("x", False), V("1,99999", False))),
            "--blocks": ints(1, 1, huge=True), "--every": ints(0, 2), "--max-minutes": minutes(zero_ok=True),
            "--cond": choice(["auto", "class", "none"]), "--precond": choice(["edm", "vp"]),
            "--attributes": choice(["brightness", "width,height"], ["nope", "brightness,nope"]),
            "--data": choice(["digits"], ["nope", "@missing", "", "@in.png"]),
            "--attn-levels": st.one_of(fixed(V("", True), V("0", True)), fixed(V("x", False), V("9", None)))},
            files={"in.png": IMG}, heavy=True),
        "distill": Command(["distill", "fashion-fast", "--out", "@st", "--trajectories", "2", "--teacher-steps", "4",
                            "--train-steps", "1", "--batch-size", "2", "--every", "1", "--quiet"], {
            "--trajectories": ints(1, 2, huge=True), "--teacher-steps": ints(4, 1), "--train-steps": ints(1, 1),
            "--batch-size": ints(1, 2, huge=True), "--lr": floats(0, 1, lo_open=True), "--guidance": floats(0, 100),
            "--seed": seeds(), "--every": ints(0, 1), "--threads": ints(0, 1),
            "--max-minutes": minutes(zero_ok=True)}, heavy=True),
        "export": Command(["export", "fashion-fast", "-o", "@out.onnx", "--calibration-batches", "1"], {
            ":1": choice(["fashion-fast"], ["nope", "@", ""]), "--format": choice(["onnx"]),
            "--calibration-batches": ints(1, 1), "-o": out_path(".onnx")}, heavy=True),
        "audit memorization": Command(["audit", "memorization", "fashion-fast", "--n", "2", "--steps", "1"], {
            "--n": ints(1, 2, huge=True), "--steps": ints(1, 1), "--seed": seeds(), "--json": out_path(".json"),
            "--picture": out_path(".png")}, heavy=True),
        "audit bias": Command(["audit", "bias", "fashion-fast", "--n", "2", "--steps", "1", "--per-prompt", "1"], {
            "--n": ints(1, 2, huge=True), "--per-prompt": ints(1, 1, huge=True), "--seed": seeds(), "--steps": ints(1, 1),
            "--json": out_path(".json"), "--picture": out_path(".png")}, heavy=True),
        "curate": Command(["curate", "digits", "--out", "@cur"], {
            ":1": choice(["digits"], ["nope", "@missing", ""]), "--near-bits": ints(0, 64),
            "--near-diff": floats(0, 1), "--outlier-z": floats(0, None, lo_open=True, cap=10),
            "--picture": out_path(".png"), "--out": fixed(V("@cur", True), V("@in.png", False))},
            files={"in.png": IMG}),
        "synthesize": Command(["synthesize", "fashion-fast", "--per-class", "1", "--steps", "1", "--classes", "Bag",
                               "-o", "@out.npz"], {
            "--per-class": ints(1, 1, huge=True), "--steps": ints(1, 1), "--guidance": floats(0, 100),
            "--classes": choice(["Bag", "0,3", "Bag,Coat"], ["nope", "99", "", ",", "-1"]), "--seed": seeds(),
            "--sampler": choice(SAMPLERS), "--workers": fixed(V("0", False), V("-1", False), V("x", False)),
            "--watermark-key": WATERMARK_KEY,
            "-o": out_path(".npz")}),
        "tabular fit": Command(["tabular", "fit", "wine", "--out", "@tab", "--steps", "1"], {
            ":2": st.one_of(choice(["wine"], ["nope", "@missing", ""]),
                            file_value("t.csv", edge_lists())),
            "--steps": ints(1, 2), "--minutes": minutes(), "--width": ints(1, 8, huge=True),
            "--depth": ints(1, 2, huge=True), "--every": ints(1, 2), "--seed": seeds(),
            "--target": anything(["class", "alcohol"])}),
        "tabular sample": Command(["tabular", "sample", "@tab", "-n", "5", "-o", "@out.csv"], {
            "-n": ints(1, 5, huge=True), "--condition": anything(["class=1", "class=99", "nope=1", "class"]),
            "--guidance": floats(0, 100), "--seed": seeds(), "-o": out_path(".csv")},
            files={"tab": "model:tabular"}),
        "tabular report": Command(["tabular", "report", "@tab", "--real", "wine", "-n", "20", "-o", "@out.html"], {
            "-n": st.one_of(st.integers(20, 30).map(lambda v: V(v, True)), fixed(V("0", False), V("-1", False), V("x", False),
                                                                         V("nan", False), V(10 ** 12, None))), "--real": st.one_of(choice(["wine"], ["nope", "@missing"]),
                                                              file_value("t.csv", edge_lists())),
            "--holdout": file_value("h.csv", edge_lists()), "--seed": seeds(), "-o": out_path(".html")},
            files={"tab": "model:tabular"}, heavy=True),
        "molecules train": Command(["molecules", "train", "--out", "@mol", "--data", "@smi.txt", "--steps", "1",
                                    "--width", "8", "--depth", "1", "--batch-size", "2", "--every", "1", "--quiet"], {
            "--data": file_value("smi.txt", st.one_of(st.just((b"CCO\nc1ccccc1\nCC(=O)O\n", True)),
                                                      edge_lists())),
            "--steps": ints(1, 2), "--width": ints(1, 8, huge=True), "--depth": ints(1, 1, huge=True),
            "--batch-size": ints(1, 2, huge=True), "--every": ints(1, 1), "--seed": seeds(),
            "--minutes": minutes(), "--limit": ints(1, 3)},
            files={"smi.txt": b"CCO\nc1ccccc1\nCC(=O)O\nCCN\n"}),
        "molecules generate": Command(["molecules", "generate", "-n", "2", "--steps", "2", "-o", "@out.csv"], {
            "-n": ints(1, 2, huge=True), "--steps": ints(1, 2), "--seed": seeds(), "--guidance": floats(0, 100),
            "--condition": st.one_of(fixed(V("qed>0.5", True), V("logp<3", True), V("250<weight<350", True)),
                                     fixed(V("qed>>1", False), V("nope<3", False), V("qed>nan", False), V("", False),
                                           V("3<weight<1", False), V("qed", False))),
            "--model": choice(["moses-small"], ["nope", "@", ""]), "-o": out_path(".csv")}),
        "molecules evaluate": Command(["molecules", "evaluate", "@smi.txt", "--reference-size", "10", "--no-fcd"], {
            ":2": file_value("smi.txt", edge_lists()), "--reference-size": ints(1, 10, huge=True),
            "--seed": seeds(), "-o": out_path(".json", ["smi.txt"])},
            files={"smi.txt": b"CCO\nc1ccccc1\nCC(=O)O\nCCN\n"}, heavy=True),
        "video train": Command(["video", "train", "--out", "@vid", "--frames", "2", "--size", "16", "--steps", "1",
                                "--batch-size", "1", "--base", "4", "--mults", "1", "--every", "1", "--quiet"], {
            "--frames": ints(1, 2, huge=True), "--size": ints(4, 4, huge=True), "--objects": ints(1, 2, hi=2),
            "--steps": ints(1, 1), "--batch-size": ints(1, 1, huge=True), "--lr": floats(0, 1, lo_open=True),
            "--base": ints(1, 4, huge=True), "--minutes": minutes(), "--seed": seeds(),
            "--bf16": choice(["off"]), "--every": ints(1, 1), "--mults": st.one_of(fixed(V("1", True), V("1,2", True)),
                                                            fixed(V("0", False), V("1,-1", False), V("", False)))},
            heavy=True),
        "video generate": Command(["video", "generate", "a coat moving up", "--frames", "2", "--steps", "1",
                                   "--scale", "1", "-o", "@out.gif"], {
            ":2": text_prompt(), "-n": ints(1, 1, huge=True), "--frames": ints(1, 2, huge=True), "--steps": ints(1, 1),
            "--guidance": floats(0, 100), "--seed": seeds(), "--fps": floats(0, 100, lo_open=True),
            "--scale": ints(1, 2, huge=True), "-o": out_path(".gif"), "--strip": out_path(".png"), "--model": VIDEO_MODEL}),
        "video denoise": Command(["video", "denoise", "@in.gif", "-o", "@out.gif"], {
            ":2": file_value("in.gif", clips()), "--sigma": floats(0, 1), "--fps": floats(0, 100, lo_open=True),
            "--scale": ints(1, 2, huge=True), "-o": out_path(".gif", ["in.gif"]), "--model": VIDEO_MODEL},
            files={"in.gif": CLIP}),
        "video fill": Command(["video", "fill", "@in.gif", "--frames", "2", "--steps", "1", "-o", "@out.gif"], {
            ":2": file_value("in.gif", clips()),
            "--frames": st.one_of(fixed(V("2", True), V("1,3", True), V("2-3", True)),
                                  fixed(V("0", False), V("99", False), V("3-1", False), V("", False), V("x", False),
                                        V("1-3", None))),
            "--recon": floats(0, None, cap=50), "--steps": ints(1, 1), "--seed": seeds(), **VIDEO_EDIT,
            "-o": out_path(".gif", ["in.gif"])}, files={"in.gif": CLIP}),
        "video extend": Command(["video", "extend", "@in.gif", "--frames", "1", "--steps", "1", "-o", "@out.gif"], {
            ":2": file_value("in.gif", clips()), "--frames": ints(1, 2, huge=True), "--recon": floats(0, None, cap=50),
            "--steps": ints(1, 1), "--seed": seeds(), **VIDEO_EDIT, "-o": out_path(".gif", ["in.gif"])},
            files={"in.gif": CLIP}),
        **{f"spread simulate {m}": Command(["spread", "simulate", "--graph", "karate", "--model", m, "--trials", "5",
                                            "--threads", "1"], {
            **SPREAD, **spread_params(m), "--max-steps": ints(1, 50, huge=True), "--threads": ints(1, 1),
            "--model": choice([m], ["nope", "", "SIR"]),
            "--seeds": anything(["0", "0,1", "99", "-1", "0,0", "x"]), "-o": out_path(".png")})
           for m in ["ic", "lt", "si", "sis", "sir", "seir", "sir-ct", "sis-ct", "bass", "voter", "majority",
                     "threshold"]},
        "spread sweep": Command(["spread", "sweep", "--graph", "karate", "--model", "sir", "--grid", "beta=0.1,0.2",
                                 "--trials", "5", "--threads", "1", "-o", "@out.csv"], {
            **SPREAD, "--grid": st.one_of(fixed(V("beta=0.1,0.2", True), V("gamma=0.5", True)),
                                          fixed(V("beta=nan", False), V("beta=2", False), V("nope=1", False),
                                                V("beta", False), V("beta=", False), V("=", False))),
            "--max-steps": ints(1, 50, huge=True), "-o": out_path(".csv"), "--model": choice(["sir"], ["nope", ""]),
            "--seeds": anything(["0", "0,1", "99", "-1"]), "--threads": ints(1, 1)}),
        "spread datasets": Command(["spread", "datasets"], {"--json": fixed(V("", True), V(None, True))}),
        "spread influence": Command(["spread", "influence", "--graph", "karate", "--p", "0.1", "-k", "2", "--trials",
                                     "5", "--eval-trials", "5"], {
            **SPREAD, "--p": floats(0, 1), "-k": ints(1, 3, hi=34), "--eval-trials": ints(1, 5),
            "--method": choice(["imm", "celf", "degree-discount", "degree"]), "--model": choice(["ic", "lt"]),
            "--epsilon": floats(0, 1, lo_open=True, hi_open=True)}),
        "spread immunize": Command(["spread", "immunize", "--graph", "karate", "--budgets", "1,2", "--trials", "5",
                                    "-o", "@out.png"], {
            **SPREAD, "--budgets": st.one_of(fixed(V("1", True), V("0,2", True)),
                                             fixed(V("-1", False), V("x", False), V("", False), V("99", False),
                                                   V("1.5", False))),
            "--strategies": choice(["random", "degree", "random,degree"], ["nope", "", ","]),
            "--beta": floats(0, 1), "--gamma": recovery(), "--betweenness-samples": ints(1, 5, huge=True),
            "-o": out_path(".png")}),
        "spread fit": Command(["spread", "fit", "--series", "1,3,7,15,30,50,60,65"], {
            "--series": st.one_of(fixed(V("1,3,7,15,30,50,60,65", True)),
                                  fixed(V("", False), V("x", False), V("1,nan,3", False), V("1,inf", False),
                                        V("1", None), V("-1,-2,-3", None))),
            "--model": choice(["bass", "sir"]), "--population": floats(0, None, lo_open=True, cap=1e6),
            "--dt": floats(0, None, lo_open=True, cap=5), "--horizon": ints(1, 5, huge=True),
            "-o": out_path(".png")}),
        "spread recommend": Command(["spread", "recommend", "--data", "@r.csv", "--length", "3"], {
            "--data": file_value("r.csv", st.one_of(st.just((b"user,item\n1,a\n1,b\n2,a\n2,c\n3,b\n", True)),
                                                    edge_lists())),
            "--method": choice(["probs", "heats", "hybrid"]), "--lam": floats(0, 1), "--length": ints(1, 3, huge=True),
            "--test-fraction": floats(0, 1, lo_open=True, hi_open=True), "--seed": seeds(), "--user": anything()},
            files={"r.csv": b"user,item\n1,a\n1,b\n2,a\n2,c\n3,b\n"}),
        "spread debtrank": Command(["spread", "debtrank", "--exposures", "@e.csv", "--equity", "10,10,10"], {
            "--exposures": file_value("e.csv", st.one_of(st.just((b"lender,borrower,amount\na,b,5\nb,c,5\nc,a,5\n", True)),
                                                         edge_lists())),
            "--equity": st.one_of(fixed(V("10,10,10", True)),
                                  fixed(V("", False), V("nan,1,1", False), V("x", False), V("-1,1,1", None))),
            "--shock": floats(0, 1, lo_open=True), "-o": out_path(".png")},
            files={"e.csv": b"lender,borrower,amount\na,b,5\nb,c,5\nc,a,5\n"}),
        "spread spatial": Command(["spread", "spatial", "--graph", "grid:5x5", "--seeds", "0", "--steps", "3", "--at",
                                   "0,3"], {
            "--graph": choice(["grid:5x5", "grid:3x4"], ["grid:0x5", "grid:axb", "grid:-1x3", "nope", "grid:99999x99999"]),
            "--steps": ints(1, 3, huge=True), "--rate": floats(0, 1), "--decay": floats(0, None, lo_open=True, cap=10),
            "--seeds": anything(["0", "0,1", "99", "-1"]), "--at": anything(["0", "0,3", "99", "-1", ""]),
            "-o": out_path(".png")}),
        "search index": Command(["search", "index", "@imgs", "-o", "@out.index", "--quiet"], {
            ":2": choice(["@imgs"], ["@missing", "@in.png", ""]), "--model": GEN["--model"],
            "--bank": ints(1, 4, huge=True), "-o": out_path(".index", ["in.png"])},
            files={"imgs": "folder:images", "in.png": IMG}),
        "search query": Command(["search", "query", "@idx", "a bag", "-k", "2"], {
            ":2": choice(["@idx"], ["@missing", "@in.png", ""]), ":3": text_prompt(),
            "--image": file_value("q.png", images()), "-k": ints(1, 3), "--rerank": ints(0, 3),
            "--model": choice(["fashion"], ["nope", ""]), "-o": out_path(".png", ["in.png"])},
            files={"idx": "model:search", "in.png": IMG}),
        "serve": Command(["serve", "--port", "0"], {
            "--port": fixed(V("-1", False), V("70000", False), V("x", False)),
            "--max-n": fixed(V("0", False), V("-1", False)), "--max-steps": fixed(V("0", False)),
            "--max-trials": fixed(V("0", False)), "--max-running": fixed(V("0", False)),
            "--timeout": fixed(V("nan", False), V("-1", False), V("0", False), V("inf", False))}, never_valid=True),
    }


COMMANDS = commands()


@st.composite
def cli_cases(draw, names=None, invalid_only=()) -> Case:
    """A command (from ``names``) with one to three of its arguments drawn; the commands in
    ``invalid_only`` only get cases with an invalid value (refused before the work, so cheap)."""
    name = draw(st.sampled_from(sorted(names or COMMANDS)))
    cmd = COMMANDS[name]
    argv, files = list(cmd.base), dict(cmd.files)
    invalid, unknown = [], False
    flags = sorted(cmd.options)
    chosen = draw(st.lists(st.sampled_from(flags), min_size=1, max_size=min(3, len(flags)), unique=True)) if flags else []
    must_fail = cmd.never_valid or name in invalid_only
    for flag in chosen:
        drawn = draw(cmd.options[flag])
        value, extra = drawn if isinstance(drawn, tuple) else (drawn, {})
        files.update(extra)
        if value.valid is False:
            invalid.append(f"{flag} {value.text!r}: {value.note}")
        elif value.valid is None:
            unknown = True
        _set(argv, flag, value.text)
    assume(invalid or not must_fail)  # such a command only ever gets invalid values
    return Case(name, argv, files, invalid, unknown)


def _set(argv: list[str], flag: str, text: str | None) -> None:
    if flag.startswith(":"):  # a positional, by its index in argv
        if text is not None:
            argv[int(flag[1:])] = text
        return
    if flag in argv:  # the base's value of the option goes (every base option has a value)
        i = argv.index(flag)
        del argv[i:i + 2]
    if text is None:
        return
    if text == "" and flag in ("--no-watermark", "--json"):  # a switch
        argv.append(flag)
    elif flag.startswith("--"):
        argv.append(f"{flag}={text}")
    elif text.startswith("@"):
        argv += [flag, text]
    else:  # a short option: attached, so that "-1" is not read as an option
        argv.append(f"{flag}{text}")


# ---------------------------------------------------------------- running a case
PREPARED: dict[str, Path] = {}  # "model:tabular" -> a folder the harness made once


def prepare(kind: str, folder: Path) -> Path:
    """Make (once per process) the prepared inputs cases can name, e.g. a fitted tabular model."""
    if kind not in PREPARED:
        target = folder / kind.replace(":", "-")
        from diffusio.cli.main import main

        if kind == "model:tabular":
            assert main(["tabular", "fit", "wine", "--out", str(target), "--steps", "2", "--quiet"]) == 0
        elif kind == "folder:images":
            target.mkdir(parents=True)
            for i in range(3):
                (target / f"{i}.png").write_bytes(png(np.full((28, 28), 60 * i + 20, np.uint8)))
        elif kind == "model:search":
            images_ = prepare("folder:images", folder)
            assert main(["search", "index", str(images_), "-o", str(target), "--quiet"]) == 0
        PREPARED[kind] = target
    return PREPARED[kind]


def materialize(case: Case, folder: Path, prepared_root: Path) -> tuple[list[str], dict[Path, str]]:
    """Write the case's files into ``folder``; the argv with paths filled in, and input digests."""
    import hashlib

    folder.mkdir(parents=True, exist_ok=True)
    for name, content in case.files.items():
        target = folder / name
        if isinstance(content, str):
            source = prepare(content, prepared_root)
            shutil.copytree(source, target) if source.is_dir() else shutil.copy2(source, target)
        else:
            target.write_bytes(content)
    argv = []
    for a in case.argv:
        if a.startswith("@"):
            a = str(folder / a[1:]) if a != "@" else str(folder)
        else:
            for flagged in ("=@",):
                if flagged in a:
                    flag, rest = a.split("=", 1)
                    a = f"{flag}={folder / rest[1:] if rest != '@' else folder}"
        argv.append(a)
    digests = {}
    for name in case.files:
        for path in sorted((folder / name).rglob("*")) if (folder / name).is_dir() else [folder / name]:
            if path.is_file():
                digests[path] = hashlib.sha256(path.read_bytes()).hexdigest()
    return argv, digests


def changed(digests: dict[Path, str]) -> list[str]:
    import hashlib

    return [str(p) for p, d in digests.items() if not p.is_file() or hashlib.sha256(p.read_bytes()).hexdigest() != d]


def verdict(case: Case, code: int | None, err: str, hang: bool, lost: list[str]) -> str:
    """One of: success, clean error, traceback, hang, exit 0 on invalid, input modified."""
    if hang:
        return "hang"
    if "Traceback" in err or code not in (0, 2, 130):
        return "traceback"
    if lost:
        return "input modified"
    if code == 0 and case.invalid:
        return "exit 0 on invalid"
    if code != 0 and not err.strip():
        return "traceback"  # an error without a message is as bad as a crash
    return "success" if code == 0 else "clean error"


# ---------------------------------------------------------------- studio
@st.composite
def b64_images(draw) -> tuple[str, bool | None]:
    import base64

    data, valid = draw(images())
    kind = draw(st.sampled_from(["plain", "plain", "data-url", "not-base64", "huge"]))
    text = base64.b64encode(data).decode()
    if kind == "data-url":
        return "data:image/png;base64," + text, valid
    if kind == "not-base64":
        return draw(st.sampled_from(["!!!", "abc", "\u00e9", "", "a" * 5])), False
    if kind == "huge":
        return "A" * (400 * 1024), False
    return text, valid


JSON_JUNK = st.one_of(st.none(), st.booleans(), st.integers(-(2 ** 70), 2 ** 70), st.floats(),
                      st.text(max_size=20), st.lists(st.integers(), max_size=3), st.just({"a": 1}))


def _field(valid, invalid, junk=True):
    options = [valid.map(lambda v: (v, True)), invalid.map(lambda v: (v, False))]
    if junk:
        options.append(JSON_JUNK.map(lambda v: (v, None)))
    return st.one_of(*options)


def studio_fields(limits) -> dict[str, dict]:
    n_ok = st.integers(1, min(2, limits.max_n))
    steps_ok = st.integers(1, min(2, limits.max_steps))
    seed = _field(st.integers(0, 2 ** 31 - 1), st.sampled_from([-1, 2 ** 31, 2 ** 70]))
    model = _field(st.sampled_from(["fashion-fast"]), st.sampled_from(["nope", "../x", "", "a" * 200]))
    gen = {"prompt": _field(st.one_of(st.none(), st.text(max_size=30)), st.just("a" * 301)),
           "label": _field(st.sampled_from(["Bag", "3"]), st.sampled_from(["99", "nope", "-1"])),
           "model": model, "sampler": _field(st.sampled_from(SAMPLERS), st.sampled_from(["magic", ""])),
           "steps": _field(steps_ok, st.sampled_from([0, -1, limits.max_steps + 1, 10 ** 12])),
           "guidance": _field(st.floats(0, 30), st.sampled_from([-1.0, 31.0, float("nan"), float("inf")])),
           "seed": seed, "n": _field(n_ok, st.sampled_from([0, -5, limits.max_n + 1, 10 ** 12])),
           "colour": _field(st.nothing(), st.just(1), junk=False)}
    inp = {"image": b64_images().map(lambda t: t), "mask": b64_images().map(lambda t: t),
           "prompt": gen["prompt"], "model": model, "steps": gen["steps"], "seed": seed,
           "recon": _field(st.floats(0, 50), st.sampled_from([-1.0, 1001.0, float("nan")]))}
    prob = st.floats(0, 1)
    params = st.one_of(
        st.fixed_dictionaries({"beta": prob, "gamma": prob}).map(lambda d: (d, True)),
        st.dictionaries(st.sampled_from(["beta", "gamma", "p", "q", "sigma", "threshold", "dt", "initial_yes", "nope"]),
                        st.one_of(st.floats(), st.sampled_from([1e300, -1.0, 2.0])), max_size=3).map(lambda d: (d, None)),
        st.sampled_from([{"beta": float("nan"), "gamma": 0.1}, {"beta": -1.0, "gamma": 0.1},
                         {"beta": 2.0, "gamma": 0.1}, {"beta": float("inf"), "gamma": 0.1}]).map(lambda d: (d, False)))
    spread = {"graph": _field(st.sampled_from(["karate", "erdos-renyi:n=20,p=0.2"]),
                              st.sampled_from(["nope", "erdos-renyi:n=10.5,p=0.1", "erdos-renyi:n=4000,p=0.5",
                                               "../../etc/passwd", "a" * 101])),
              "edges": _field(st.just("0,1\n1,2\n2,0\n"), st.sampled_from(["", "\x00\xff", "a,b,c,d\n", "x" * 100])),
              "model": _field(st.sampled_from(["sir", "sis", "ic", "sir-ct"]), st.sampled_from(["nope", ""])),
              "params": params,
              "seeds": _field(st.sampled_from([[0], [0, 1], ["0"]]), st.sampled_from([[999], [-1], ["nope"]])),
              "trials": _field(st.integers(1, 20), st.sampled_from([0, -1, limits.max_trials + 1, 10 ** 12])),
              "seed": seed, "max_steps": _field(st.integers(1, 50), st.sampled_from([0, 5001, 10 ** 9])),
              "draw_graph": _field(st.booleans(), st.sampled_from([{"a": 1}]), junk=False)}
    search = {"text": _field(st.one_of(st.none(), st.text(max_size=30)), st.just("a" * 301)),
              "image": b64_images(), "k": _field(st.integers(1, 5), st.sampled_from([0, -1, 201, 10 ** 12])),
              "rerank": _field(st.integers(0, 5), st.sampled_from([-1, 65, 10 ** 12]))}
    return {"/v1/generate": gen, "/v1/inpaint": inp, "/v1/spread/simulate": spread, "/v1/search": search}


GET_PATHS = ("/v1/models", "/v1/graphs")


@st.composite
def studio_cases(draw, limits) -> tuple[str, object, bool | None]:
    """(endpoint, JSON body, valid): a valid base body with up to three fields drawn; sometimes
    a body that is not an object at all, or a GET of the read-only endpoints."""
    fields = studio_fields(limits)
    path = draw(st.sampled_from(sorted(fields) + ["/v1/models", "/v1/graphs"]))
    if path in GET_PATHS:
        return path, None, True
    if draw(st.integers(0, 9)) == 0:
        return path, draw(st.one_of(st.just([]), st.just("x"), st.just(None), st.integers(), st.just(b"\xff{"))), False
    base = {"/v1/generate": {"prompt": "a bag", "n": 1, "steps": 1, "model": "fashion-fast"},
            "/v1/inpaint": {"image": base64_png(IMG), "mask": base64_png(png(np.pad(np.full((14, 28), 255, np.uint8),
                                                                                   ((14, 0), (0, 0))))),
                            "steps": 1, "model": "fashion-fast", "prompt": "a bag"},
            "/v1/spread/simulate": {"graph": "karate", "model": "sir", "params": {"beta": 0.1, "gamma": 0.1},
                                    "trials": 5, "max_steps": 20, "draw_graph": False},
            "/v1/search": {"text": "a bag", "k": 2}}[path]
    body, valid = dict(base), True
    names = draw(st.lists(st.sampled_from(sorted(fields[path])), min_size=1, max_size=3, unique=True))
    for name in names:
        value, ok = draw(fields[path][name])
        body[name] = value
        if ok is False:
            valid = False
        elif ok is None and valid:
            valid = None
    return path, body, valid


def base64_png(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def json_safe(body) -> bytes:
    """JSON text of a body; non-finite floats as NaN/Infinity (what Python clients send)."""
    import json

    if isinstance(body, bytes):
        return body
    return json.dumps(body, allow_nan=True).encode()


def is_finite_json(body) -> bool:
    if isinstance(body, float):
        return math.isfinite(body)
    if isinstance(body, dict):
        return all(is_finite_json(v) for v in body.values())
    if isinstance(body, list):
        return all(is_finite_json(v) for v in body)
    return True


class Hang(KeyboardInterrupt):
    """Raised by the alarm inside an in-process run that passed its time bound: a KeyboardInterrupt,
    so that the command stops its work the way Ctrl-C does (worker threads included)."""


def run_in_process(argv: list[str], bound: float) -> tuple[int | None, str, bool, float]:
    """``diffusio.cli.main.main(argv)`` with stdout/stderr captured and a time bound (SIGALRM):
    (exit code, stderr plus any traceback, hang, seconds)."""
    import contextlib
    import signal
    import time
    import traceback

    from diffusio.cli.main import main

    fired = []

    def on_alarm(*_):
        fired.append(True)
        raise Hang()

    out, err = io.StringIO(), io.StringIO()
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, bound)
    start, code, hang = time.monotonic(), None, False
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    except SystemExit as stop:  # argparse: 2 for a bad flag, 0 for --help
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 2)
    except Hang:
        hang = True
    except BaseException:  # noqa: BLE001 -- anything escaping main is a traceback for the user
        err.write(traceback.format_exc())
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    return code, err.getvalue(), hang or bool(fired), time.monotonic() - start
