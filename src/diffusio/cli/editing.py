"""``diffusio img2img | invert | interpolate | inpaint | denoise``: edit images with any trained model."""

from __future__ import annotations

import argparse
import io

import numpy as np

from diffusio.cli.args import guidance_float, non_negative_float, positive_int, positive_int_at_most, seed_int
from diffusio.errors import UsageError

FMT = argparse.RawDescriptionHelpFormatter


def _common(p, steps: int) -> None:
    p.add_argument("--model", default="fashion", help="shipped model name or run directory (default: fashion)")
    p.add_argument("--steps", type=positive_int("--steps"), default=steps)
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--force", action="store_true", help="write -o even if it is one of the inputs")


def register(sub) -> None:
    for register_one in (_register_img2img, _register_invert, _register_interpolate, _register_inpaint,
                         _register_denoise):
        register_one(sub)


def _register_img2img(sub) -> None:
    p = sub.add_parser("img2img", help="turn an image into another by SDEdit", formatter_class=FMT,
                       epilog='Example:\n  diffusio img2img sketch.png "an ankle boot" --strength 0.6 -o boot.png')
    p.add_argument("image")
    p.add_argument("prompt", nargs="?", default=None)
    p.add_argument("--strength", type=float, default=0.6, help="0 returns the input, 1 ignores it (default 0.6)")
    p.add_argument("--guidance", type=guidance_float(), default=None)
    p.add_argument("-o", "--output", default="img2img.png")
    _common(p, 20)
    p.set_defaults(func=cmd_img2img)


def _register_invert(sub) -> None:
    p = sub.add_parser("invert", help="find the noise latent that generates an image (DDIM inversion)",
                       formatter_class=FMT, epilog="Example:\n  diffusio invert boot.png -o latent.npy\n"
                                                   "  diffusio generate --latent latent.npy -o again.png")
    p.add_argument("image")
    p.add_argument("prompt", nargs="?", default=None, help="the condition the image was made with (optional)")
    p.add_argument("-o", "--output", default="latent.npy")
    _common(p, 50)
    p.set_defaults(func=cmd_invert)


def _register_interpolate(sub) -> None:
    p = sub.add_parser("interpolate", help="walk between two images in the latent space", formatter_class=FMT,
                       epilog="Example:\n  diffusio interpolate a.png b.png --frames 8 -o strip.png --gif walk.gif")
    p.add_argument("image_a")
    p.add_argument("image_b")
    p.add_argument("--prompt-a", default=None)
    p.add_argument("--prompt-b", default=None)
    p.add_argument("--frames", type=positive_int_at_most("--frames", 1000), default=8, help="frames (at most 1000)")
    p.add_argument("-o", "--output", default="strip.png")
    p.add_argument("--gif", default=None, help="also write an animated GIF here")
    _common(p, 50)
    p.set_defaults(func=cmd_interpolate)


def _register_inpaint(sub) -> None:
    p = sub.add_parser("inpaint", help="fill the masked part of an image", formatter_class=FMT,
                       epilog="Example:\n  diffusio inpaint shirt.png --mask mask.png -o filled.png\n"
                              '  diffusio inpaint shirt.png --box 0,14,28,28 "a t-shirt" -o filled.png')
    p.add_argument("image")
    p.add_argument("prompt", nargs="?", default=None)
    p.add_argument("--mask", default=None, help="image whose white pixels are to be generated")
    p.add_argument("--box", default=None, help="x0,y0,x1,y1: a rectangle to generate (instead of or with --mask)")
    p.add_argument("--resample", type=positive_int("--resample"), default=None,
                   help="RePaint resampling per step (default 4; 1 with --recon)")
    p.add_argument("--no-auto-class", action="store_true",
                   help="without a prompt, do not condition on the class the visible part shows (plain RePaint)")
    p.add_argument("--class-from", default="auto", metavar="SOURCE",
                   help="without a prompt, who names the class the visible part shows: auto (the shipped context "
                        "classifier of the model's data, else the model), model (the model as its own classifier: "
                        "80 more network evaluations, right less often), or a folder from "
                        "'diffusio classifier --context'")
    p.add_argument("--recon", type=non_negative_float("--recon"), default=0.0,
                   help="reconstruction guidance: pull the fill toward agreeing with the kept pixels; "
                        "needs no classes (try 30; one pass per step unless --resample says otherwise, and a "
                        "backward pass each)")
    p.add_argument("--guidance", type=guidance_float(), default=None)
    p.add_argument("-o", "--output", default="inpainted.png")
    _common(p, 25)
    p.set_defaults(func=cmd_inpaint)


def _register_denoise(sub) -> None:
    p = sub.add_parser("denoise", help="remove Gaussian noise from an image", formatter_class=FMT,
                       epilog="Example:\n  diffusio denoise noisy.png --sigma 0.2 -o clean.png")
    p.add_argument("image")
    p.add_argument("--sigma", type=non_negative_float("--sigma", 1.0), default=None,
                   help="noise std in [0, 1] pixel units (estimated when left out)")
    p.add_argument("--method", choices=["mmse", "ode"], default="mmse",
                   help="mmse: posterior mean, best PSNR (default); ode: reverse process, sharper")
    p.add_argument("-o", "--output", default="denoised.png")
    _common(p, 10)
    p.set_defaults(func=cmd_denoise)

def _load(args):
    from diffusio.generative.pipeline import Generator

    return Generator.load(args.model)


def _read(gen, path):
    from diffusio.generative.data.images import load_image

    c, h, w = gen.model.image_shape
    return load_image(path, c, (h, w))[None]


def _cond(gen, prompt):
    return None if prompt is None else gen.condition(1, prompt=prompt)


def _output(path, args, *inputs) -> None:
    """Check -o before any work; it may not be one of the inputs unless --force."""
    from diffusio._io import check_output

    check_output(path, inputs=inputs, force=args.force)


def _write(images, path, ncol=None):
    from diffusio.generative.data.datasets import to_uint8
    from diffusio.generative.data.images import save_images

    return save_images(to_uint8(images.numpy()), path, ncol=ncol)


def cmd_img2img(args) -> int:
    from diffusio.generative.editing.edits import img2img

    _output(args.output, args, args.image)
    gen = _load(args)
    out = img2img(gen, _read(gen, args.image), args.strength, cond=_cond(gen, args.prompt), steps=args.steps,
                  guidance=args.guidance, seed=args.seed)
    print(f"wrote {_write(out, args.output)}")
    return 0


def cmd_invert(args) -> int:
    from pathlib import Path

    from diffusio._io import atomic_write_bytes
    from diffusio.generative.editing.edits import invert

    _output(args.output, args, args.image)
    path = Path(args.output)
    if path.suffix != ".npy":
        raise UsageError(f"the latent is written as .npy; got {path.name}")
    gen = _load(args)
    z = invert(gen, _read(gen, args.image), cond=_cond(gen, args.prompt), steps=args.steps)
    buf = io.BytesIO()
    np.save(buf, z.numpy().astype(np.float32), allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())
    print(f"wrote latent {tuple(z.shape)} to {path}; reconstruct with: diffusio generate --latent {path} "
          f"--steps {args.steps} --sampler euler --guidance 1")
    return 0


def cmd_interpolate(args) -> int:
    from diffusio.generative.editing.edits import interpolate

    _output(args.output, args, args.image_a, args.image_b)
    if args.gif:
        _output(args.gif, args, args.image_a, args.image_b)
    if (args.prompt_a is None) != (args.prompt_b is None):
        raise UsageError("give both --prompt-a and --prompt-b, or neither")
    gen = _load(args)
    frames = interpolate(gen, _read(gen, args.image_a), _read(gen, args.image_b), args.frames,
                         cond_a=_cond(gen, args.prompt_a), cond_b=_cond(gen, args.prompt_b), steps=args.steps)
    print(f"wrote {_write(frames, args.output, ncol=len(frames))}")
    if args.gif:
        from PIL import Image

        from diffusio._io import atomic_write_bytes
        from diffusio.generative.data.datasets import to_uint8

        pics = [Image.fromarray(f).resize((112, 112), Image.NEAREST) for f in to_uint8(frames.numpy())]
        buf = io.BytesIO()
        pics[0].save(buf, format="GIF", save_all=True, append_images=pics[1:] + pics[::-1][1:-1], duration=120, loop=0)
        atomic_write_bytes(args.gif, buf.getvalue())
        print(f"wrote {args.gif}")
    return 0


def parse_box(text: str, h: int, w: int) -> np.ndarray:
    try:
        x0, y0, x1, y1 = (int(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"--box takes x0,y0,x1,y1 in pixels, got {text!r}")
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise UsageError(f"--box {text} is outside the {w}x{h} image or empty")
    mask = np.zeros((h, w), np.float32)
    mask[y0:y1, x0:x1] = 1
    return mask


def cmd_inpaint(args) -> int:
    from diffusio.generative.editing.edits import inpaint
    from diffusio.generative.data.images import load_image

    _output(args.output, args, args.image, args.mask)
    if args.mask is None and args.box is None:
        raise UsageError("give --mask MASK.png or --box x0,y0,x1,y1 to say what to fill")
    gen = _load(args)
    c, h, w = gen.model.image_shape
    mask = np.zeros((h, w), np.float32)
    if args.mask:
        mask = np.maximum(mask, (load_image(args.mask, 1, (h, w))[0] > 0).astype(np.float32))
    if args.box is not None:
        mask = np.maximum(mask, parse_box(args.box, h, w))
    auto = not args.no_auto_class and args.prompt is None and gen.model.class_embeddings is not None
    result = inpaint(gen, _read(gen, args.image), mask, cond=_cond(gen, args.prompt), steps=args.steps,
                     resample=args.resample, guidance=args.guidance, seed=args.seed, recon=args.recon,
                     auto_class=auto, classifier=args.class_from)
    if result.classes is not None:
        who = "the model" if result.named_by == "model" else f"the context classifier for {result.named_by}"
        print(f"the visible part shows: {', '.join(gen.class_names[i] for i in result.classes)} (named by {who})")
    print(f"wrote {_write(result.images, args.output)} ({result.nfe} network evaluations, "
          f"{int(mask.sum())} pixels filled)")
    return 0


def cmd_denoise(args) -> int:
    from diffusio.generative.editing.edits import denoise, estimate_noise_sigma
    _output(args.output, args, args.image)
    gen = _load(args)
    noisy = _read(gen, args.image)
    sigma = 2 * args.sigma if args.sigma is not None else estimate_noise_sigma(noisy)
    out = denoise(gen, noisy, sigma, method=args.method, steps=args.steps)
    print(f"wrote {_write(out, args.output)} (noise sigma {sigma / 2:.3f} in [0, 1] units"
          f"{'' if args.sigma is not None else ', estimated'})")
    return 0
