"""``diffusio train | generate | evaluate | samplers``: parse, call the Python API, save, print."""

from __future__ import annotations

import argparse
import sys
import time

from diffusio._precision import BF16_CHOICES
from diffusio.cli.args import guidance_float, interval, non_negative_int, positive_int_at_most, seed_int
from diffusio.cli.args import int_tuple as _int_tuple
from diffusio.cli.args import name_list as _name_list
from diffusio.cli.args import non_negative_float as _non_negative_float
from diffusio.cli.args import positive_int as _positive_int
from diffusio.cli.args import (add_cooldown_option, add_guide_options, add_nudge_option, add_watermark_options,
                               redraw_bars, watermark_choice)
from diffusio.errors import UsageError


def register(sub) -> None:
    fmt = argparse.RawDescriptionHelpFormatter

    p = sub.add_parser("train", help="train a diffusion model on a dataset", formatter_class=fmt,
                       description="Train a denoiser; writes checkpoints, a sample grid and a loss curve as it goes.",
                       epilog="Example:\n  diffusio train --data fashion-mnist --out runs/fashion --steps 8000\n"
                              "  diffusio train --data fashion-mnist --out runs/fashion --steps 12000 --resume")
    p.add_argument("--data", required=True, help="fashion-mnist, mnist5k, digits, or a folder of images / idx files")
    p.add_argument("--out", required=True, help="run directory (checkpoints, samples.png, loss.png)")
    p.add_argument("--steps", type=_positive_int("--steps"), default=10000)
    p.add_argument("--batch-size", type=_positive_int("--batch-size"), default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    add_cooldown_option(p)
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--cond", choices=["auto", "text", "class", "none"], default="auto",
                   help="conditioning: text prompts (default when the data has classes or captions), class, none")
    p.add_argument("--cond-dropout", type=float, default=0.1, help="probability of training on the null condition")
    p.add_argument("--precond", choices=["edm", "vp"], default="edm", help="EDM preconditioning or VP eps-prediction")
    p.add_argument("--base", type=_positive_int("--base"), default=32, help="UNet width at full resolution")
    p.add_argument("--mults", type=_int_tuple, default=(1, 2, 2), help="width multipliers per resolution")
    p.add_argument("--blocks", type=_positive_int("--blocks"), default=1, help="residual blocks per resolution")
    p.add_argument("--attn-levels", type=_int_tuple, default=(2,), help="resolutions (0 = full) with self-attention")
    p.add_argument("--ema-decay", type=float, default=0.999)
    p.add_argument("--posthoc-ema", action="store_true",
                   help="also keep EDM2's two power-function EMAs (widths 0.05 and 0.10) and save them at every "
                        "checkpoint (in OUT/phema/), so 'diffusio ema' can choose the EMA length after training")
    p.add_argument("--attributes", type=_name_list, default=(), metavar="NAMES",
                   help="also condition on measured image features (comma list of brightness, width, height); "
                        "generate then takes --attr NAME=RANK")
    p.add_argument("--attr-dropout", type=float, default=0.3,
                   help="probability that each attribute (and the prompt) is left out of a training condition")
    p.add_argument("--init", default="", metavar="MODEL",
                   help="fine-tune from this model (shipped name or run directory); its network is kept, "
                        "new attribute inputs start at zero so training starts from the parent's outputs")
    p.add_argument("--attributes-only", action="store_true",
                   help="with --init and --attributes: keep the parent's network as it is and train only a wish "
                        "adapter (a scale and shift per block), so prompts without --attr wishes sample exactly as "
                        "the parent does (docs/editing.md)")
    p.add_argument("--every", type=int, default=500, help="checkpoint/sample/plot interval in steps")
    p.add_argument("--minutes", "--max-minutes", type=_non_negative_float("--minutes"), default=0.0,
                   help="stop cleanly after this many minutes (0: no limit; --max-minutes is its old name)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: default)")
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu",
                   help="where the network trains: cpu, cuda (under torchrun one GPU per process, NCCL "
                        "between them) or auto (a GPU when PyTorch sees one); batches and noise are drawn "
                        "on the CPU, so they are the same on any device")
    p.add_argument("--bf16", choices=BF16_CHOICES, default="auto",
                   help="bfloat16 autocast for the forward and backward passes (auto: where the CPU has AMX or "
                        "AVX-512 BF16, about 1.7x faster there; weights, optimiser and EMA stay float32)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)
    register_demo(sub)
    register_generate(sub)
    register_evaluate(sub)
    register_samplers(sub)
    register_classifier(sub)
    register_class_guide(sub)
    register_ema(sub)


def cmd_train(args) -> int:
    from diffusio.generative.training.trainer import TrainConfig, train

    cfg = TrainConfig(data=args.data, out=args.out, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                      cooldown=args.cooldown, seed=args.seed, cond=args.cond, cond_dropout=args.cond_dropout, precond=args.precond,
                      base=args.base, mults=args.mults, blocks=args.blocks, attn_levels=args.attn_levels,
                      ema_decay=args.ema_decay, posthoc_ema=args.posthoc_ema, attributes=args.attributes, attr_dropout=args.attr_dropout,
                      init=args.init, attributes_only=args.attributes_only, every=args.every, minutes=args.minutes,
                      threads=args.threads, device=args.device, bf16=args.bf16, quiet=args.quiet,
                      extra={"command": " ".join(["diffusio"] + sys.argv[1:])})
    out = train(cfg, resume=args.resume)
    from diffusio.generative.training.distributed import world_from_env

    if world_from_env()[0] == 0:  # under torchrun, one report, from the rank that wrote the files
        print(f"model saved in {out} (samples: {out / 'samples.png'}, loss curve: {out / 'loss.png'})")
    return 0


def register_ema(sub) -> None:
    p = sub.add_parser("ema", help="choose the EMA length after training (post-hoc EMA of a --posthoc-ema run)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Rebuild the weight average of any relative width from the two power-function "
                                   "EMAs a run saved at every checkpoint (Karras et al., 2024, EDM2), and write it "
                                   "as a model directory that generate, evaluate and every other command load.",
                       epilog="Example:\n  diffusio train --data fashion-mnist --out runs/f --posthoc-ema\n"
                              "  diffusio ema runs/f --sigma-rel 0.08 --out runs/f-ema0.08\n"
                              "  diffusio evaluate runs/f-ema0.08 -n 1000")
    p.add_argument("run", help="a training run directory made with --posthoc-ema")
    p.add_argument("--sigma-rel", type=float, required=True,
                   help="width of the average relative to the training length, in [0.001, 0.289): "
                        "0.05-0.10 are the saved ones; longer averages smooth more")
    p.add_argument("--step", type=_positive_int("--step"), default=None,
                   help="the training step the average ends at (default: the last snapshot)")
    p.add_argument("--out", required=True, help="new model directory (must not hold a model)")
    p.set_defaults(func=cmd_ema)


def cmd_ema(args) -> int:
    from diffusio.generative.training.posthoc_ema import posthoc_ema

    r = posthoc_ema(args.run, args.sigma_rel, args.out, step=args.step)
    print(f"EMA of relative width {r['sigma_rel']:g} at step {r['step']}, rebuilt from {r['snapshots']} snapshots "
          f"(profile error {r['profile_error']:.1%}); model saved in {args.out}")
    if r["profile_error"] > 0.1:
        print(f"warning: the snapshots express this width poorly (profile error {r['profile_error']:.0%} > 10%); "
              "choose a width nearer 0.05-0.10 or checkpoint more often (--every)", file=sys.stderr)
    return 0


def register_class_guide(sub) -> None:
    p = sub.add_parser("class-guide", help="train a class guide for an image model and write it into its folder",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train a noise-aware classifier on the model's training data and a reader of the "
                                   "class a prompt names, and store both in the model's folder: sampling then steers "
                                   "each image toward its prompt's class (classifier guidance, --classifier-guidance). "
                                   "A second classifier of finished images decides which images --redraws draws again.",
                       epilog="Example:\n  diffusio train --data fashion-mnist --out runs/f\n"
                              "  diffusio class-guide runs/f --scale 1\n  diffusio generate \"a coat\" --model runs/f")
    p.add_argument("model", help="a run folder of `diffusio train`, conditioned on text or classes")
    p.add_argument("--steps", type=_positive_int("--steps"), default=5000,
                   help="training steps of each classifier (default 5000)")
    p.add_argument("--scale", type=_non_negative_float("--scale", 100.0), default=1.0,
                   help="the model's default --classifier-guidance (default 1)")
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_class_guide)


def cmd_class_guide(args) -> int:
    from diffusio.generative.conditioning.class_guide import attach_class_guide

    guide = attach_class_guide(args.model, steps=args.steps, scale=args.scale, seed=args.seed, quiet=args.quiet)
    by_sigma = ", ".join(f"{acc:.2f} at sigma {s}" for s, acc in guide.scores["classifier_test_accuracy_by_sigma"].items())
    read = guide.scores.get("reader_paraphrase_accuracy")
    print(f"class guide written to {args.model} (default --classifier-guidance {args.scale:g}): classifier {by_sigma} "
          f"on noisy test images; check classifier {guide.scores['check_test_accuracy']:.2f} on clean ones"
          + ("" if read is None else f"; caption reader {read:.0%} of held-out paraphrases"))
    return 0


def register_classifier(sub) -> None:
    p = sub.add_parser("classifier", help="train the small evaluation classifier for a dataset",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train the CNN whose features give Frechet distance and whose predictions "
                                   "give class accuracy in 'diffusio evaluate'.",
                       epilog="Example:\n  diffusio classifier --data fashion-mnist --out my-classifier")
    p.add_argument("--data", required=True, help="a labelled dataset: fashion-mnist, mnist5k, digits, an idx "
                   "folder, or a .npz from 'diffusio synthesize'")
    p.add_argument("--test", default=None, help="the dataset whose test split scores it (default: --data's own; "
                   "needed for a .npz, e.g. --test fashion-mnist)")
    p.add_argument("--out", required=True, help="folder for classifier.safetensors + classifier.json")
    p.add_argument("--epochs", type=_positive_int("--epochs"), default=6)
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--context", action="store_true",
                   help="train a context classifier: random parts of each image hidden, so it names the class "
                        "from what is left (inpainting uses it to pick the class of the fill)")
    p.set_defaults(func=cmd_classifier)


def cmd_classifier(args) -> int:
    from pathlib import Path

    from diffusio.generative.evaluation.classifier import save_classifier, train_classifier

    if Path(args.out).exists() and not Path(args.out).is_dir():  # found by the fuzz: it failed after training
        raise UsageError(f"--out {args.out} is a file; give a folder for classifier.safetensors + classifier.json")
    clf = train_classifier(args.data, epochs=args.epochs, seed=args.seed, test=args.test, context=args.context)
    save_classifier(clf, args.out)
    hidden = "" if clf.hidden_test_accuracy is None else f", {clf.hidden_test_accuracy:.4f} with random parts hidden"
    print(f"classifier for {args.data}: test accuracy {clf.test_accuracy:.4f}{hidden}; saved in {args.out}")
    return 0


def register_generate(sub) -> None:
    from diffusio.generative.pipeline import samplers, schedules

    p = sub.add_parser("generate", help="generate images from a text prompt, a class label, or unconditionally",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Generate images with a shipped model or a trained run directory.",
                       epilog='Examples:\n  diffusio generate "a leather ankle boot" -n 16 --steps 20 --sampler dpmpp-2m '
                              '--guidance 3 --seed 0 -o boots.png\n'
                              '  diffusio generate --label Bag -n 8 -o bags.npy\n'
                              '  diffusio generate -n 64 --guidance 0 -o unconditional.png')
    p.add_argument("prompt", nargs="?", default=None, help="free text; leave out for unconditional samples")
    p.add_argument("-n", type=_positive_int("-n"), default=16, help="number of images (default 16)")
    p.add_argument("--model", default="fashion", help="shipped model name or run directory (default: fashion)")
    p.add_argument("--label", default=None, help="condition on a class (index or name) instead of a prompt")
    p.add_argument("--steps", type=_positive_int("--steps"), default=None, help="sampling steps (model default: 20)")
    p.add_argument("--sampler", choices=list(samplers()), default=None, help="default: dpmpp-2m")
    p.add_argument("--schedule", choices=schedules(), default=None, help="noise schedule (default: karras)")
    p.add_argument("--guidance", type=guidance_float(), default=None,
                   help="classifier-free guidance scale; 1 = none, 0 = unconditional (default: the model's)")
    p.add_argument("--early-stop", type=_non_negative_float("--early-stop"), default=None, metavar="TOL",
                   help="stop when the clean estimate changes by less than TOL (relative) twice in a row")
    p.add_argument("--tol", type=float, default=None, help="relative tolerance of --sampler adaptive (default 0.05)")
    p.add_argument("--attr", action="append", default=None, metavar="NAME=RANK",
                   help="ask for an image feature, as a rank in [0, 1] within the class (models trained with "
                        "--attributes, e.g. fashion-attr): --attr brightness=0.2 --attr width=0.9")
    p.add_argument("--guidance-interval", type=interval, default=None, metavar="LO,HI",
                   help="guide only where LO < sigma <= HI, plain conditional elsewhere (Kynkaanniemi et al. "
                        "2024); 'all' guides everywhere (default: the model's)")
    add_guide_options(p)
    add_nudge_option(p)
    p.add_argument("--attr-guidance", type=guidance_float("--attr-guidance"), default=None, metavar="W",
                   help="guidance of the --attr wishes apart from the prompt; larger follows them more closely "
                        "at 1.5x the cost (default: the model's, else --guidance)")
    p.add_argument("--attr-prompt-guidance", type=guidance_float("--attr-prompt-guidance"), default=None,
                   metavar="W", help="guidance of the prompt at every noise level when there are --attr wishes: "
                                     "holds the class against wishes on shape (default: the model's)")
    add_watermark_options(p)
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("-o", "--output", default="samples.png", help=".png grid or .npy uint8 array (default samples.png)")
    p.add_argument("--scale", type=positive_int_at_most("--scale", 64), default=1,
                   help="upscale the PNG grid by this factor (at most 64)")
    p.add_argument("--latent", default=None, help="start from a latent written by 'diffusio invert' (.npy)")
    p.add_argument("--backend", choices=["torch", "onnxruntime"], default="torch",
                   help="run the network with torch or onnxruntime (exported and cached on first use)")
    p.add_argument("--onnx", default=None, help="an .onnx file from 'diffusio export' (implies --backend onnxruntime)")
    add_sampling_bf16_option(p)
    p.set_defaults(func=cmd_generate)


def add_sampling_bf16_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bf16", choices=BF16_CHOICES, default=None,
                   help="the network in bfloat16 (auto: where the CPU has AMX or AVX-512 BF16, 1.6-1.8x faster "
                        "there; other pixels than float32 for the same seed; default: the model's, else off)")


def cmd_generate(args) -> int:
    from diffusio.generative.conditioning.attributes import parse_wishes
    from diffusio.generative.data.datasets import to_uint8
    from diffusio._io import check_output
    from diffusio.generative.data.images import save_images
    from diffusio.generative.editing.edits import generate_from_latent
    from diffusio.generative.pipeline import Generator
    from diffusio.generative.trust.stamp import saving_finish
    from diffusio.generative.trust.watermark import resolve_key, survives

    check_output(args.output)
    watermark = watermark_choice(args)  # contradicting flags fail before any work
    if args.output.lower().rsplit(".", 1)[-1] not in ("png", "npy", "jpg", "jpeg"):
        raise UsageError(f"unknown output type for {args.output}; use .png or .npy")
    if args.prompt is not None and not args.prompt.strip():
        raise UsageError("empty prompt; give some text, or leave the prompt out for unconditional samples")
    start = time.time()
    gen = Generator.load(args.model, backend=args.backend, onnx=args.onnx)
    if args.latent:
        images = to_uint8(generate_from_latent(gen, args.latent, prompt=args.prompt, steps=args.steps,
                                               guidance=args.guidance).numpy())
        path = save_images(images, args.output)
        print(f"wrote {len(images)} images reconstructed from {args.latent} to {path} in {time.time() - start:.1f}s")
        return 0
    made = gen.sample(args.prompt, n=args.n, label=args.label, steps=args.steps, sampler=args.sampler,
                      guidance=args.guidance, schedule=args.schedule, seed=args.seed,
                      progress=sys.stderr.isatty(), early_stop=args.early_stop, tol=args.tol,
                      attrs=parse_wishes(args.attr), watermark=watermark, attr_guidance=args.attr_guidance,
                      attr_prompt_guidance=args.attr_prompt_guidance,
                      guidance_interval=args.guidance_interval, autoguidance=args.autoguidance, guide=args.guide,
                      autoguidance_interval=args.autoguidance_interval, bf16=args.bf16,
                      classifier_guidance=args.classifier_guidance, redraws=args.redraws,
                      redraw_below=redraw_bars(args), nudges=args.nudges)
    images = made.uint8()
    if made.unnamed:
        _note(f"{made.unnamed} of {len(images)} images still do not show the prompt's class to the class guide "
              "after the last redraw (kept as their best try); --redraws sets how many tries")
    key = resolve_key(watermark)
    path = save_images(images, args.output, scale=args.scale, finish=saving_finish(key, warn=_note))
    sampler, steps = args.sampler or gen.defaults["sampler"], args.steps or gen.defaults["steps"]
    if key and not survives(sampler, steps):
        _note(f"the {sampler} sampler draws fresh noise at {steps} steps, which washes out the watermark; "
              "these images will not test as marked (use a deterministic sampler such as dpmpp-2m"
              + (", or --steps 1" if sampler == "consistency" else "") + ")")
    what = repr(args.prompt) if args.prompt else (f"label {args.label}" if args.label is not None else "unconditional")
    print(f"wrote {len(images)} images ({what}) to {path} in {time.time() - start:.1f}s "
          f"({made.nfe:g} network evaluations)")
    return 0


def _note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


def register_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="FD, KID, precision/recall and class accuracy against the test set",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Evaluate a model with the dataset's shipped classifier; prints the "
                                   "real-vs-real floor beside every number.",
                       epilog="Examples:\n  diffusio evaluate fashion\n  diffusio evaluate runs/fashion -n 2000 --json report.json\n"
                              "  diffusio evaluate my-diffusers-folder --data fashion-mnist")
    p.add_argument("model", help="shipped model name or run directory")
    p.add_argument("-n", type=_positive_int("-n"), default=1000, help="samples to compare (default 1000)")
    p.add_argument("--per-prompt", type=non_negative_int("--per-prompt"), default=100,
                   help="samples per class prompt / paraphrase (default 100; 0 skips the prompt checks)")
    p.add_argument("--steps", type=_positive_int("--steps"), default=None)
    from diffusio.generative.pipeline import samplers

    p.add_argument("--sampler", choices=list(samplers()), default=None)  # "" used to mean the default (fuzz)
    p.add_argument("--guidance", type=guidance_float(), default=None)
    p.add_argument("--guidance-interval", type=interval, default=None, metavar="LO,HI",
                   help="noise levels where guidance applies ('all': everywhere; default: the model's)")
    add_guide_options(p)
    add_nudge_option(p)
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--data", default=None,
                   help="dataset to compare with, for a model that does not name it (a diffusers folder)")
    p.add_argument("--json", dest="json_out", default=None, help="also write the report as JSON here")
    add_sampling_bf16_option(p)
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args) -> int:
    from diffusio._io import atomic_save_json, check_output
    from diffusio.generative.evaluation.evaluate import evaluate

    if args.json_out:
        check_output(args.json_out)
    report = evaluate(args.model, n=args.n, steps=args.steps, sampler=args.sampler, guidance=args.guidance,
                      guidance_interval=args.guidance_interval, seed=args.seed, per_prompt=args.per_prompt,
                      progress=sys.stderr.isatty(), data=args.data, autoguidance=args.autoguidance, guide=args.guide,
                      autoguidance_interval=args.autoguidance_interval, bf16=args.bf16,
                      classifier_guidance=args.classifier_guidance, redraws=args.redraws,
                      redraw_below=redraw_bars(args), nudges=args.nudges)
    print(format_report(report))
    if args.json_out:
        atomic_save_json(args.json_out, report)
        print(f"report written to {args.json_out}")
    return 0


def format_report(report: dict) -> str:
    s = report["sampling"]
    lines = [f"{report['n']} samples vs {report['dataset']} test set "
             f"(sampler {s['sampler']}, {s['steps']} steps, guidance {s['guidance']}"
             + (f" in sigma {s['guidance_interval']}" if s.get("guidance_interval") and s["guidance"] != 1 else "")
             + (f", autoguidance {s['autoguidance']} from {s.get('guide')}" if s.get("autoguidance", 1.0) != 1.0 else "")
             + (f" in sigma {s['autoguidance_interval']}"
                if s.get("autoguidance_interval") and s.get("autoguidance", 1.0) != 1.0 else "")
             + (f", classifier guidance {s['classifier_guidance']}" if s.get("classifier_guidance") else "")
             + (f", up to {s['redraws']} redraws ({report.get('unnamed', 0)} samples still unnamed)"
                if s.get("redraws") else "")
             + (", class bars " + ", ".join(f"{k} {v:g}" for k, v in s["redraw_below"].items())
                if s.get("redraws") and s.get("redraw_below") else "")
             + (", nudged at " + ",".join(f"{w:g}" for w in s["nudges"]) if s.get("redraws") and s.get("nudges") else "")
             + "); "
             f"classifier test accuracy {report['classifier_test_accuracy']:.3f}",
             f"{'metric':<12}{'model':>10}{'real floor':>12}"]
    for key in ("fd", "kid", "precision", "recall"):
        lines.append(f"{key:<12}{report['model'][key]:>10.4f}{report['real_floor'][key]:>12.4f}")
    if "label_accuracy" in report:
        lines.append(f"{'label acc':<12}{report['label_accuracy']:>10.4f}{report['real_label_accuracy']:>12.4f}")
    for section in ("class_prompts", "paraphrases"):
        if section in report:
            lines.append(f"{section.replace('_', ' ')}: fraction assigned to the requested class")
            for prompt, acc in report[section].items():
                lines.append(f"  {acc:6.2%}  {prompt}")
    if "attributes" in report:
        lines.append("attribute control: Spearman(requested rank, measured rank), mean measured rank per request")
        for name, r in report["attributes"].items():
            means = ", ".join(f"{v:g}->{m:.2f}" for v, m in zip(r["values"], r["mean_measured"]))
            lines.append(f"  {name:<11} rho {r['spearman']:.3f}  class acc {r['class_accuracy']:.3f}  ({means})")
    return "\n".join(lines)


def register_samplers(sub) -> None:
    p = sub.add_parser("samplers", help="list the samplers and schedules",
                       description="List samplers (all share one signature) and noise schedules.",
                       epilog="Example: diffusio samplers")
    p.set_defaults(func=cmd_samplers)


def cmd_samplers(args) -> int:
    from diffusio.generative.pipeline import samplers, schedules

    print("samplers:")
    for name, doc in samplers().items():
        print(f"  {name:<10} {doc}")
    print("schedules: " + ", ".join(schedules()))
    return 0


DEMO_PROMPTS = ["a leather ankle boot", "running shoes", "a handbag", "winter coat", "jeans", "an evening dress"]


def register_demo(sub) -> None:
    p = sub.add_parser("demo", help="generate a labelled grid for a few prompts with the shipped model",
                       description="The main job in one command: one row of images per prompt.",
                       epilog='Example: diffusio demo -o demo.png --prompt "a sneaker" --prompt "a bag"')
    p.add_argument("--prompt", action="append", default=None, help="a prompt (repeatable); default: six examples")
    p.add_argument("-n", type=_positive_int("-n"), default=8, help="images per prompt (default 8)")
    p.add_argument("--model", default="fashion")
    p.add_argument("--seed", type=seed_int, default=0)
    add_watermark_options(p)
    p.add_argument("-o", "--output", default="demo.png")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args) -> int:
    from diffusio._io import atomic_write_bytes, check_output
    from diffusio.generative.data.images import labelled_rows, png_bytes
    from diffusio.generative.pipeline import Generator

    path = check_output(args.output)
    if path.suffix.lower() != ".png":
        raise UsageError(f"demo writes a PNG; give -o name.png, not {path.name}")
    prompts = args.prompt or DEMO_PROMPTS
    start = time.time()
    gen = Generator.load(args.model)
    import math

    from diffusio._resources import check_memory  # before the list of n prompts is built (found by the fuzz)

    check_memory(len(prompts) * args.n * math.prod(gen.model.image_shape) * 4 * 3, f"-n {args.n} images for each of {len(prompts)} prompts",
                 "ask for fewer images per prompt")
    images = gen.generate([p for p in prompts for _ in range(args.n)], n=len(prompts) * args.n, seed=args.seed,
                          progress=sys.stderr.isatty(), watermark=watermark_choice(args))
    rows = [images[i * args.n:(i + 1) * args.n] for i in range(len(prompts))]
    atomic_write_bytes(path, png_bytes(labelled_rows(rows, prompts)))
    print(f"generated {len(images)} images for {len(prompts)} prompts in {time.time() - start:.1f}s")
    print(f"image grid: {path.resolve()}")
    return 0
