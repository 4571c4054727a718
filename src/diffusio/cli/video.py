"""``diffusio video train | motion-guide | garment-check | garment-guide | generate | denoise | fill | extend``:
text-to-video and clip enhancement."""

from __future__ import annotations

import argparse

from diffusio._precision import BF16_CHOICES
from diffusio.cli.args import (add_run_options, guidance_float, int_tuple, non_negative_float, non_negative_int,
                               positive_int, positive_int_at_most, scales, seed_int)


def register(sub) -> None:
    p = sub.add_parser("video", help="text-to-video on Moving Fashion-MNIST; denoise, fill and extend clips",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="Examples:\n  diffusio video generate \"a coat moving up\" --frames 16 -o clip.gif\n"
                              "  diffusio video denoise noisy.mp4 -o clean.mp4\n"
                              "  diffusio video fill clip.gif --frames 6-10 -o filled.gif\n"
                              "  diffusio video extend clip.gif --frames 8 -o longer.gif\n"
                              "  diffusio video train --out runs/video --minutes 170   (then --resume)")
    video = p.add_subparsers(dest="video_command", metavar="COMMAND")
    register_train(video)
    register_motion_guide(video)
    register_garment_check(video)
    register_garment_guide(video)
    register_generate(video)
    register_denoise(video)
    register_fill(video)
    register_extend(video)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _output_options(p, scale: int = 1) -> None:
    p.add_argument("-o", "--output", required=True, help="the clip to write: .gif, .mp4, or .png (a frame strip)")
    p.add_argument("--fps", type=non_negative_float("--fps"), default=8.0, help="frames per second (default 8)")
    p.add_argument("--scale", type=positive_int_at_most("--scale", 64), default=scale,
                   help=f"enlarge frames this many times, nearest-neighbour (default {scale})")
    p.add_argument("--model", default="moving-fashion", help="run folder or shipped model (default moving-fashion)")
    p.add_argument("--force", action="store_true", help="allow -o to overwrite the input")


def register_train(sub) -> None:
    p = sub.add_parser("train", help="train a text-to-video model (checkpoints; --resume continues)")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--data", default="moving-fashion",
                   help="moving-fashion (default), moving-mnist, or a folder of GIF/MP4 clips")
    p.add_argument("--captions", default=None, help="with a folder: a CSV with columns file,caption")
    p.add_argument("--frames", type=positive_int("--frames"), default=16)
    p.add_argument("--size", type=positive_int("--size"), default=32, help="frame height and width in pixels")
    p.add_argument("--objects", type=positive_int("--objects"), default=1, help="objects per generated clip: 1 or 2")
    p.add_argument("--steps", type=positive_int("--steps"), default=20_000)
    p.add_argument("--batch-size", type=positive_int("--batch-size"), default=8)
    p.add_argument("--lr", type=non_negative_float("--lr", 1.0), default=1e-3)
    p.add_argument("--base", type=positive_int("--base"), default=None, help="channels of the first level (default 16)")
    p.add_argument("--mults", type=int_tuple, default=None,
                   help="channel multipliers per level, e.g. 1,2,4 (the default)")
    p.add_argument("--init", default=None,
                   help="continue this trained video model (shipped name or run folder); it brings its network")
    p.add_argument("--frame-cond", action="store_true",
                   help="also give every frame the caption beside its position, the path on which text steers "
                        "motion (with --init: added to the parent's network at zero, so nothing is lost)")
    p.add_argument("--whiten-cond", action="store_true",
                   help="also give the network the caption whitened on the training captions, where the motion "
                        "weighs as much as the object (with --init: added at zero, like --frame-cond)")
    p.add_argument("--noise-shift", type=non_negative_float("--noise-shift", 4.0), default=0.0,
                   help="train clips this much higher in log sigma than still frames (default 0; "
                        "0.5 ln(frames) treats the frames as copies: docs/benchmarks-video.md)")
    p.add_argument("--bf16", choices=BF16_CHOICES, default="auto",
                   help="bfloat16 autocast (auto: where the CPU has AMX or AVX-512 BF16)")
    add_run_options(p, every=250)
    p.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    from diffusio.errors import UsageError
    from diffusio.video.training import train_video

    size = [name for name in ("base", "mults") if getattr(args, name) is not None]
    if size and args.init is not None:
        raise UsageError(f"--init {args.init} brings its own network; leave out --{' and --'.join(size)}")
    gen = train_video(args.out, args.data, captions=args.captions, frames=args.frames, size=args.size,
                      objects=args.objects, steps=args.steps, minutes=args.minutes, batch_size=args.batch_size,
                      lr=args.lr, base=args.base or 16, mults=args.mults or (1, 2, 4), bf16=args.bf16,
                      every=args.every, seed=args.seed, resume=args.resume, init=args.init,
                      frame_cond=args.frame_cond, noise_shift=args.noise_shift,
                      whiten_cond=args.whiten_cond, quiet=args.quiet)
    trained = gen.config["trained"]
    since = f" on top of {args.init}'s {gen.config['init']['steps']:,} steps" if args.init is not None else ""
    print(f"trained {trained['steps']:,} steps ({trained['wall_seconds'] / 60:.1f} min){since}; model in {args.out}")
    return 0


def register_motion_guide(sub) -> None:
    _register_guide(sub, "motion", "Train a noise-aware motion classifier on real moving clips and a reader of the "
                                   "motion a caption names, and store both in the model's folder: `video generate` "
                                   "then steers each clip toward its prompt's motion (classifier guidance).",
                    "a run folder of `diffusio video train` on moving-fashion or moving-mnist", steps=1200, scale=6)


def register_garment_guide(sub) -> None:
    _register_guide(sub, "garment", "Train a noise-aware classifier of the garment in a frame, on real still frames, "
                                    "and a reader of the garment a caption names, and store both in the model's "
                                    "folder: `video generate` then holds the prompted garment in every frame "
                                    "(classifier guidance on the clip read as one garment throughout).",
                    "a run folder of `diffusio video train` on moving-fashion", steps=4000, scale=0)


def _register_guide(sub, what: str, description: str, model_help: str, steps: int, scale: float) -> None:
    p = sub.add_parser(f"{what}-guide", help=f"train a {what} guide for a video model and write it into its folder",
                       description=description)
    p.add_argument("model", help=model_help)
    p.add_argument("--steps", type=positive_int("--steps"), default=steps,
                   help=f"classifier training steps (default {steps})")
    p.add_argument("--scale", type=non_negative_float("--scale", 100.0), default=None,
                   help=f"the model's default --{what}-guidance (default {scale:g}{': off' if not scale else ''})")
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=lambda args: cmd_guide(args, what))


def cmd_guide(args, what: str) -> int:
    if what == "motion":
        from diffusio.video.motion import attach_motion_guide as attach
    else:
        from diffusio.video.garment_guide import attach_garment_guide as attach
    scale = {} if args.scale is None else {"scale": args.scale}
    guide = attach(args.model, steps=args.steps, seed=args.seed, quiet=args.quiet, **scale)
    by_sigma = ", ".join(f"{acc:.2f} at sigma {s}" for s, acc in guide.scores["classifier_test_accuracy_by_sigma"].items())
    read = "clips" if what == "motion" else "frames"
    print(f"{what} guide written to {args.model}: classifier {by_sigma} on real test {read}; caption reader "
          f"{guide.scores['reader_held_out_accuracy']:.3f} on held-out phrasings")
    return 0


def register_garment_check(sub) -> None:
    p = sub.add_parser("garment-check", help="train a garment check for a video model and write it into its folder",
                       description="Train a classifier of the object in each frame and a reader of the garment a "
                                   "caption names, on real moving clips, and store both in the model's folder: "
                                   "`video generate --redraws N` then draws again the clips whose object is not the "
                                   "prompted garment in every frame.")
    p.add_argument("model", help="a run folder of `diffusio video train` on moving-fashion (one object per clip)")
    p.add_argument("--steps", type=positive_int("--steps"), default=3000,
                   help="classifier training steps (default 3000)")
    p.add_argument("--clips", type=positive_int("--clips"), default=4000,
                   help="real training clips whose frames it learns from (default 4000)")
    p.add_argument("--redraws", type=non_negative_int("--redraws"), default=None,
                   help="the model's default --redraws (default 2)")
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_garment_check)


def cmd_garment_check(args) -> int:
    from diffusio.video.garment_check import attach_garment_check

    redraws = {} if args.redraws is None else {"redraws": args.redraws}
    check = attach_garment_check(args.model, clips=args.clips, steps=args.steps, seed=args.seed, quiet=args.quiet,
                                 **redraws)
    scores = check.scores_on_real
    print(f"garment check written to {args.model}: {scores['test_crop_accuracy']:.3f} of real test frames named, "
          f"{scores['test_clips_named']:.3f} of real test clips pass; caption reader "
          f"{scores['reader_held_out_accuracy']:.3f} on held-out phrasings")
    return 0


def register_generate(sub) -> None:
    from diffusio.generative.core.samplers import PLAIN_SAMPLERS

    p = sub.add_parser("generate", help="a clip from a text prompt")
    p.add_argument("prompt", nargs="?", default=None, help='what moves and how, e.g. "a coat moving up"')
    p.add_argument("-n", type=positive_int_at_most("-n", 256), default=1, help="clips, side by side (default 1, at most 256)")
    p.add_argument("--frames", type=positive_int("--frames"), default=None, help="frames (default: the model's, 16)")
    p.add_argument("--steps", type=positive_int("--steps"), default=None, help="sampling steps (default 20)")
    p.add_argument("--guidance", type=guidance_float(), default=None, help="classifier-free guidance (default 3)")
    p.add_argument("--sampler", choices=PLAIN_SAMPLERS, default=None,
                   help="sampler (default: the model's: ddpm for the shipped moving-fashion, which with motion "
                        "guidance keeps the object whole and moving as asked most often; dpmpp-2m for a new run)")
    p.add_argument("--motion-guidance", type=non_negative_float("--motion-guidance", 100.0), default=None,
                   help="how hard the model's motion guide steers toward the motion the prompt names "
                        "(default: the model's, 6 for moving-fashion; 0: off)")
    p.add_argument("--garment-guidance", type=non_negative_float("--garment-guidance", 100.0), default=None,
                   help="how hard the model's garment guide holds the prompted garment in every frame "
                        "(default: the model's; 0: off)")
    p.add_argument("--redraws", type=non_negative_int("--redraws"), default=None, metavar="N",
                   help="draw again, up to N times, a clip whose object is not the prompted garment in every frame "
                        "(read by the model's garment check); 0 = never (default: the model's)")
    p.add_argument("--nudges", type=scales, default=None, metavar="W[,W...]",
                   help="the first redraw rounds are steered toward the prompted garment by the garment guide at "
                        "these scales (e.g. 3,3); 'none': no round is (default: the model's)")
    p.add_argument("--motion-check", action=argparse.BooleanOptionalAction, default=None,
                   help="redraws also draw again a clip that the model's motion guide does not see moving as the "
                        "prompt says (default: the model's, on for moving-fashion)")
    _consistency_option(p)
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--strip", default=None, help="also write the frames side by side as this .png")
    _output_options(p, scale=4)
    p.set_defaults(func=cmd_generate)


def cmd_generate(args) -> int:
    from diffusio.video.files import generate_file

    clips = generate_file(args.prompt, args.output, model=args.model, n=args.n, frames=args.frames, steps=args.steps,
                          guidance=args.guidance, seed=args.seed, fps=args.fps, scale=args.scale, strip=args.strip,
                          force=args.force, sampler=args.sampler, motion_guidance=args.motion_guidance,
                          garment_guidance=args.garment_guidance, redraws=args.redraws, nudges=args.nudges,
                          motion_check=args.motion_check, consistency=args.consistency)
    print(f"wrote {len(clips)} clip(s) of {clips.shape[1]} frames to {args.output}"
          + (f" and {args.strip}" if args.strip else ""))
    return 0


def _consistency_option(p) -> None:
    p.add_argument("--consistency", type=non_negative_float("--consistency", 1.0), default=None, metavar="S",
                   help="pull the model's estimate toward one look of the object in all frames, from 0 (off) to 1: "
                        "for objects that move without turning or changing shape (default: the model's)")


def register_denoise(sub) -> None:
    p = sub.add_parser("denoise", help="remove Gaussian noise from a clip with the video model")
    p.add_argument("input", help="a .gif or .mp4 clip of the model's frame size")
    p.add_argument("--sigma", type=non_negative_float("--sigma"), default=None,
                   help="noise std in pixel levels / 127.5 (default: estimated from the clip)")
    p.add_argument("--per-frame", action="store_true", help="each frame on its own (the image-model baseline)")
    _consistency_option(p)
    _output_options(p)
    p.set_defaults(func=cmd_denoise)


def cmd_denoise(args) -> int:
    from diffusio.video.files import denoise_file

    clean, sigma = denoise_file(args.input, args.output, model=args.model, sigma=args.sigma, per_frame=args.per_frame,
                                consistency=args.consistency, fps=args.fps, scale=args.scale, force=args.force)
    how = "given" if args.sigma is not None else "estimated; pass --sigma if you know it"
    print(f"wrote {len(clean)} denoised frames to {args.output} (noise sigma {sigma:.3f}, {how})")
    return 0


def register_fill(sub) -> None:
    p = sub.add_parser("fill", help="regenerate missing frames consistently with the frames around them")
    p.add_argument("input", help="a .gif or .mp4 clip of the model's frame size")
    p.add_argument("--frames", required=True, help="frames to fill, counted from 1: 6-10, or 3,5,7-9")
    p.add_argument("--prompt", default=None, help="optional text of what the clip shows")
    p.add_argument("--recon", type=non_negative_float("--recon"), default=0.0,
                   help="reconstruction guidance weight (e.g. 30): new frames agree more with the given ones, "
                        "at one backward pass per step")
    p.add_argument("--strength", type=non_negative_float("--strength", 1.0), default=None,
                   help="start the new frames from the linear blend of the frames around them, noised this far "
                        "(default 0.45); 1: from pure noise")
    p.add_argument("--steps", type=positive_int("--steps"), default=None)
    p.add_argument("--seed", type=seed_int, default=0)
    _output_options(p)
    p.set_defaults(func=cmd_fill)


def cmd_fill(args) -> int:
    from diffusio.video.files import fill_file

    filled = fill_file(args.input, args.output, args.frames, model=args.model, prompt=args.prompt, steps=args.steps,
                       recon=args.recon, seed=args.seed, fps=args.fps, scale=args.scale, force=args.force,
                       **({} if args.strength is None else {"strength": args.strength}))
    print(f"wrote {len(filled)} frames ({args.frames} filled) to {args.output}")
    return 0


def register_extend(sub) -> None:
    p = sub.add_parser("extend", help="continue a clip with new frames")
    p.add_argument("input", help="a .gif or .mp4 clip of the model's frame size")
    p.add_argument("--frames", type=positive_int("--frames"), required=True, help="new frames to add")
    p.add_argument("--prompt", default=None, help="optional text of what the clip shows")
    p.add_argument("--recon", type=non_negative_float("--recon"), default=0.0,
                   help="reconstruction guidance weight (e.g. 30): the new frames follow the clip more closely")
    p.add_argument("--steps", type=positive_int("--steps"), default=None)
    p.add_argument("--seed", type=seed_int, default=0)
    _output_options(p)
    p.set_defaults(func=cmd_extend)


def cmd_extend(args) -> int:
    from diffusio.video.files import extend_file

    longer = extend_file(args.input, args.output, args.frames, model=args.model, prompt=args.prompt,
                         steps=args.steps, recon=args.recon, seed=args.seed, fps=args.fps, scale=args.scale,
                         force=args.force)
    print(f"wrote {len(longer)} frames ({args.frames} new) to {args.output}")
    return 0
