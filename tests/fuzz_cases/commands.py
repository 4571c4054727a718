"""The CLI command table: each command's tiny valid base argv and a strategy for each of its
arguments; ``cli_cases`` draws a case from it."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from .values import (Case, V, Value, anything, choice, clips, edge_lists, file_value, fixed, floats, images,  # noqa: F401
                     ints, minutes, npy_latents, out_path, png, seeds, text_prompt)


IMG = png(np.full((28, 28), 100, np.uint8))
IMG2 = png(np.full((28, 28), 200, np.uint8))


def samples_npz(classes: list[str]) -> bytes:
    """A labelled set as ``diffusio synthesize`` writes it: two flat images per class."""
    buf = io.BytesIO()
    n = 2 * len(classes)
    np.savez(buf, images=np.linspace(0, 255, n * 784).astype(np.uint8).reshape(n, 28, 28),
             labels=np.arange(n) % len(classes), class_names=np.array(classes))
    return buf.getvalue()


FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]
SAMPLES = st.sampled_from([(samples_npz(FASHION_CLASSES), True), (samples_npz(["cat", "dog"]), False),
                           (b"not an npz", False)])


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
# whether autoguidance may run depends on the model's guide and on --guide: numbers in range have no
# oracle (a run or a clean refusal), out-of-range ones are refused
AUTOGUIDE = {"--autoguidance": floats(0, 100).map(lambda v: V(v.text, None if v.valid else False, v.note)),
             "--guide": st.sampled_from(["fashion-guide", "fashion-diverse", "nope", "fashion-attr", ""]).map(
                 lambda v: V(v, None)),
             # whether the model has a class guide decides: a run or a clean refusal
             "--classifier-guidance": floats(0, 100).map(lambda v: V(v.text, None if v.valid else False, v.note)),
             "--redraws": ints(0, 2, hi=20).map(lambda v: V(v.text, None if v.valid else False, v.note)),
             # a class of the model (every --model here is a fashion one, or refused) with a probability
             "--redraw-below": st.one_of(
                 st.sampled_from(["Shirt=0.3", "Ankle boot=1", "T-shirt/top=0"]).map(lambda v: V(v, None)),
                 st.sampled_from(["Shirt", "=0.3", "Shirt=", "Shirt=1.5", "Shirt=-0.1", "Shirt=nan", "Shirt=x",
                                  "nope=0.3", ""]).map(lambda v: V(v, False, "not CLASS=P of the model")))}
BF16 = choice(["auto", "on", "off"])
# classifier-guidance scales of the first redraw rounds: more than the redraws is a clean refusal
NUDGES = {"--nudges": st.one_of(fixed(V("2", None), V("2,4", None), V("1,2,3,4,5,6", None), V("none", None)),
                                fixed(V("0", False, "a scale of 0"), V("2,x", False, "not a number"),
                                      V("", False, "no scales"), V("nan", False, "not finite"))),
          "--autoguidance-interval": st.one_of(fixed(V("all", True), V("0,1", True), V("0.5,2", True)),
                                               fixed(V("1,0", False), V("x", False), V("-1,1", False)))}


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
            "--attr-prompt-guidance": floats(0, 100), **AUTOGUIDE, **NUDGES,
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
            "--bf16": BF16,
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
        "completion": Command(["completion", "bash"], {":1": choice(["bash", "zsh", "tcsh"], ["fish", "", "BASH"])}),
        "evaluate": Command(["evaluate", "fashion-fast", "-n", "5", "--per-prompt", "1", "--steps", "1"], {
            ":1": choice(["fashion-fast"], ["nope", "@", ""]), "-n": ints(5, 1, huge=True),
            "--per-prompt": ints(1, 1, huge=True), "--guidance": floats(0, 100), "--seed": seeds(),
            "--steps": ints(1, 1), "--json": out_path(".json"), "--sampler": choice(SAMPLERS), **AUTOGUIDE,
            **NUDGES, "--bf16": BF16,
            "--guidance-interval": st.one_of(fixed(V("all", True), V("0.3,5", True)), fixed(V("1,0", False), V("x", False)))},
            heavy=True),
        "class-guide": Command(["class-guide", "@missing", "--steps", "1", "--quiet"], {
            ":1": fixed(V("@missing", False), V("@", False), V("fashion", False), V("", False)),
            "--steps": ints(1, 1, huge=True), "--scale": floats(0, 100), "--seed": seeds()}, never_valid=True),
        "classifier": Command(["classifier", "--data", "digits", "--out", "@cls", "--epochs", "1"], {
            "--data": choice(["digits"], ["nope", "@missing", ""]), "--epochs": ints(1, 1),
            "--seed": seeds(), "--out": fixed(V("@cls", True), V("@in.png", False))},
            files={"in.png": IMG}, heavy=True),
        "train": Command(["train", "--data", "digits", "--out", "@run", "--steps", "1", "--batch-size", "2", "--base",
                          "8", "--mults", "1", "--attn-levels", "", "--every", "1", "--threads", "1", "--quiet"], {
            "--steps": ints(1, 2), "--batch-size": ints(1, 3, huge=True), "--lr": floats(0, 1, lo_open=True),
            "--ema-decay": floats(0, 1, hi_open=True), "--cond-dropout": floats(0, 1),
            "--cooldown": floats(0, 1), "--attr-dropout": floats(0, 1), "--seed": seeds(), "--threads": ints(0, 2),
            "--bf16": BF16, "--base": ints(1, 8, huge=True), "--mults": st.one_of(fixed(V("1", True), V("1,2", True)),
                                                                fixed(V("0", False), V("1,-2", False), V("", False),
                                                                      V("x", False), V("1,99999", False))),
            "--blocks": ints(1, 1, huge=True), "--every": ints(0, 2), "--minutes": minutes(zero_ok=True),
            "--cond": choice(["auto", "class", "none"]), "--precond": choice(["edm", "vp"]),
            "--attributes": choice(["brightness", "width,height"], ["nope", "brightness,nope"]),
            "--data": choice(["digits"], ["nope", "@missing", "", "@in.png"]),
            "--attn-levels": st.one_of(fixed(V("", True), V("0", True)), fixed(V("x", False), V("9", None)))},
            files={"in.png": IMG}, heavy=True),
        "ema": Command(["ema", "@run", "--sigma-rel", "0.08", "--out", "@m"], {
            ":1": st.sampled_from([V("@run", True), V("@in.png", False), V("", False), V("@missing", False)]),
            "--sigma-rel": floats(0.001, 0.28), "--step": ints(1, 2, huge=True),
            "--out": fixed(V("@m", True), V("@run", False))},
            files={"run": "model:phema", "in.png": IMG}),
        "distill": Command(["distill", "fashion-fast", "--out", "@st", "--trajectories", "2", "--teacher-steps", "4",
                            "--train-steps", "1", "--batch-size", "2", "--every", "1", "--quiet"], {
            "--trajectories": ints(1, 2, huge=True), "--teacher-steps": ints(4, 1), "--train-steps": ints(1, 1),
            "--batch-size": ints(1, 2, huge=True), "--lr": floats(0, 1, lo_open=True), "--guidance": floats(0, 100),
            "--seed": seeds(), "--every": ints(0, 1), "--threads": ints(0, 1),
            "--minutes": minutes(zero_ok=True)}, heavy=True),
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
            "--per-class": ints(1, 1, huge=True), "--steps": ints(1, 1), "--guidance": floats(0, 100), **AUTOGUIDE,
            "--classes": choice(["Bag", "0,3", "Bag,Coat"], ["nope", "99", "", ",", "-1"]), "--seed": seeds(),
            "--sampler": choice(SAMPLERS), "--workers": fixed(V("0", False), V("-1", False), V("x", False)),
            "--watermark-key": WATERMARK_KEY,
            "-o": out_path(".npz")}),
        "tabular fit": Command(["tabular", "fit", "wine", "--out", "@tab", "--steps", "1"], {
            ":2": st.one_of(choice(["wine"], ["nope", "@missing", ""]),
                            file_value("t.csv", edge_lists())),
            "--steps": ints(1, 2), "--minutes": minutes(), "--width": ints(1, 8, huge=True),
            "--depth": ints(1, 2, huge=True), "--every": ints(1, 2), "--seed": seeds(), "--mix": floats(0, 1),
            "--cooldown": floats(0, 1), "--target": anything(["class", "alcohol"]), "--no-derive": fixed(V(None, True), V("", True)),
            "--no-relate": fixed(V(None, True), V("", True)), "--no-label-check": fixed(V(None, True), V("", True)),
            "--no-lookup": fixed(V(None, True), V("", True))}),
        "tabular sample": Command(["tabular", "sample", "@tab", "-n", "5", "-o", "@out.csv"], {
            "-n": ints(1, 5, huge=True), "--condition": anything(["class=1", "class=99", "nope=1", "class"]),
            "--guidance": floats(0, 100), "--seed": seeds(), "-o": out_path(".csv"), "--bf16": BF16,
            "--guidance-interval": st.one_of(fixed(V("all", True), V("1,10", True)), fixed(V("1,0", False), V("x", False))),
            "--redraws": ints(0, 2, hi=20), "--redraw-below": floats(0, 1)},
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
            "--minutes": minutes(), "--limit": ints(1, 3), "--cooldown": floats(0, 1),
            # the base sets --width, which --init refuses; no oracle beyond a clean end
            "--init": st.sampled_from(["moses-small", "nope", "", "@mol"]).map(lambda v: V(v, None))},
            files={"smi.txt": b"CCO\nc1ccccc1\nCC(=O)O\nCCN\n"}),
        "molecules generate": Command(["molecules", "generate", "-n", "2", "--steps", "2", "-o", "@out.csv"], {
            "-n": ints(1, 2, huge=True), "--steps": ints(1, 2), "--seed": seeds(), "--guidance": floats(0, 100),
            "--condition": st.one_of(fixed(V("qed>0.5", True), V("logp<3", True), V("250<weight<350", True)),
                                     fixed(V("qed>>1", False), V("nope<3", False), V("qed>nan", False), V("", False),
                                           V("3<weight<1", False), V("qed", False))),
            "--model": choice(["moses-small"], ["nope", "@", ""]), "-o": out_path(".csv"), "--bf16": BF16,
            "--sampler": choice(["confident", "random", "remask"], ["nope", ""])}),
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
                                                            fixed(V("0", False), V("1,-1", False), V("", False))),
            # the base sets --base and --mults, which --init refuses; no oracle beyond a clean end
            "--init": st.sampled_from(["moving-fashion", "nope", "", "@vid"]).map(lambda v: V(v, None)),
            "--frame-cond": fixed(V(None, True), V("", True)), "--whiten-cond": fixed(V(None, True), V("", True)),
            "--noise-shift": floats(0, 4)},
            heavy=True),
        "video generate": Command(["video", "generate", "a coat moving up", "--frames", "2", "--steps", "1",
                                   "--scale", "1", "-o", "@out.gif"], {
            ":2": text_prompt(), "-n": ints(1, 1, huge=True), "--frames": ints(1, 2, huge=True), "--steps": ints(1, 1),
            "--guidance": floats(0, 100), "--seed": seeds(), "--fps": floats(0, 100, lo_open=True),
            "--scale": ints(1, 2, huge=True), "-o": out_path(".gif"), "--strip": out_path(".png"), "--model": VIDEO_MODEL,
            "--sampler": choice(["ddpm", "dpmpp-2m"], ["adaptive", "nope", ""]), "--motion-guidance": floats(0, 100),
            # in range: a run (moving-fashion names its garment check) or a clean refusal (a model without one)
            "--redraws": ints(0, 2, hi=20).map(lambda v: V(v.text, None if v.valid else False, v.note)),
            # in range: steered, or a clean refusal from a model without a garment guide
            "--garment-guidance": floats(0, 100).map(lambda v: V(v.text, None if v.valid else False, v.note)),
            "--nudges": NUDGES["--nudges"], "--consistency": floats(0, 1)}),
        # a guide needs a video run folder, which no case's workspace holds: every case is refused cleanly
        "video motion-guide": Command(["video", "motion-guide", "@missing", "--steps", "1", "--quiet"], {
            ":2": fixed(V("@missing", False), V("@", False), V("moving-fashion", False), V("", False)),
            "--steps": ints(1, 1, huge=True), "--scale": floats(0, 100), "--seed": seeds()}, never_valid=True),
        "video garment-check": Command(["video", "garment-check", "@missing", "--steps", "1", "--clips", "1", "--quiet"], {
            ":2": fixed(V("@missing", False), V("@", False), V("moving-fashion", False), V("", False)),
            "--steps": ints(1, 1, huge=True), "--clips": ints(1, 1, huge=True), "--redraws": ints(0, 2, hi=20),
            "--seed": seeds()}, never_valid=True),
        "video garment-guide": Command(["video", "garment-guide", "@missing", "--steps", "1", "--quiet"], {
            ":2": fixed(V("@missing", False), V("@", False), V("moving-fashion", False), V("", False)),
            "--steps": ints(1, 1, huge=True), "--scale": floats(0, 100), "--seed": seeds()}, never_valid=True),
        "video denoise": Command(["video", "denoise", "@in.gif", "-o", "@out.gif"], {
            ":2": file_value("in.gif", clips()), "--sigma": floats(0, 1), "--fps": floats(0, 100, lo_open=True),
            "--consistency": floats(0, 1),
            "--scale": ints(1, 2, huge=True), "-o": out_path(".gif", ["in.gif"]), "--model": VIDEO_MODEL},
            files={"in.gif": CLIP}),
        "video fill": Command(["video", "fill", "@in.gif", "--frames", "2", "--steps", "1", "-o", "@out.gif"], {
            ":2": file_value("in.gif", clips()),
            "--frames": st.one_of(fixed(V("2", True), V("1,3", True), V("2-3", True)),
                                  fixed(V("0", False), V("99", False), V("3-1", False), V("", False), V("x", False),
                                        V("1-3", None))),
            "--recon": floats(0, None, cap=50), "--strength": floats(0, 1, lo_open=True), "--steps": ints(1, 1),
            "--seed": seeds(), **VIDEO_EDIT, "-o": out_path(".gif", ["in.gif"])}, files={"in.gif": CLIP}),
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
            # in.png is not an input of this command (only a wrong index path): -o may overwrite it
            "--model": choice(["fashion"], ["nope", ""]), "-o": out_path(".png")},
            files={"idx": "model:search", "in.png": IMG}),
        "search head": Command(["search", "head", "fashion", "--samples", "@s.npz", "-o", "@out.safetensors"], {
            ":2": choice(["fashion"], ["nope", "", "no/such/run"]), "--samples": file_value("s.npz", SAMPLES),
            "--c": floats(0, None, lo_open=True, cap=100), "-o": out_path(".safetensors", ["s.npz"])}),
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
    if text == "" and flag in ("--no-watermark", "--json", "--frame-cond", "--whiten-cond", "--no-derive", "--no-relate", "--no-lookup"):  # a switch
        argv.append(flag)
    elif flag.startswith("--"):
        argv.append(f"{flag}={text}")
    elif text.startswith("@"):
        argv += [flag, text]
    else:  # a short option: attached, so that "-1" is not read as an option
        argv.append(f"{flag}{text}")
