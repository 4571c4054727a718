"""Drawn argument values (each knowing whether it is valid) and drawn input files."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
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
