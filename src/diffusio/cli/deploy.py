"""``diffusio distill | export``: make a model cheap to run (few-step students, ONNX, int8)."""

from __future__ import annotations

import argparse
import json

from diffusio.cli.args import guidance_float, non_negative_float, positive_int, seed_int
from diffusio.errors import UsageError

FMT = argparse.RawDescriptionHelpFormatter


def register(sub) -> None:
    p = sub.add_parser("distill", help="distil a model into a 1-, 2- or 4-step student", formatter_class=FMT,
                       description="Trajectory consistency distillation: the guided teacher's ODE solutions "
                                   "teach a student to jump from any noise level to the final image.",
                       epilog="Example:\n  diffusio distill fashion --out runs/fashion-fast --minutes 60\n"
                              "  diffusio distill fashion --out runs/fashion-fast --resume\n"
                              '  diffusio generate --model runs/fashion-fast "a sneaker" --steps 2')
    p.add_argument("teacher", help="shipped model name or run directory to distil")
    p.add_argument("--out", required=True, help="student directory (trajectories, checkpoints)")
    p.add_argument("--trajectories", type=positive_int("--trajectories"), default=8192,
                   help="teacher ODE solutions to learn from (default 8192)")
    p.add_argument("--teacher-steps", type=positive_int("--teacher-steps"), default=12,
                   help="DPM-Solver++(2M) steps per teacher trajectory (default 12)")
    p.add_argument("--guidance", type=guidance_float(), default=None,
                   help="teacher guidance baked into the student (default: the teacher's)")
    p.add_argument("--train-steps", type=positive_int("--train-steps"), default=4000)
    p.add_argument("--batch-size", type=positive_int("--batch-size"), default=64)
    p.add_argument("--lr", type=non_negative_float("--lr", 1), default=2e-4)  # 1e300 was a traceback (fuzz)
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--every", type=int, default=250, help="checkpoint interval in training steps")
    p.add_argument("--minutes", "--max-minutes", type=non_negative_float("--minutes"), default=0.0,
                   help="stop training cleanly after this many minutes (0: no limit; --max-minutes is its old name)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: default)")
    p.add_argument("--resume", action="store_true", help="continue the distillation in --out")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_distill)

    p = sub.add_parser("export", help="export a model's denoiser to ONNX (optionally int8)", formatter_class=FMT,
                       epilog="Example:\n  diffusio export fashion --format onnx -o fashion.onnx\n"
                              "  diffusio export fashion -o fashion-int8.onnx --int8\n"
                              '  diffusio generate "a bag" --onnx fashion.onnx')
    p.add_argument("model", help="shipped model name or run directory")
    p.add_argument("--format", default="onnx", help="export format (onnx)")
    p.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    p.add_argument("--int8", action="store_true",
                   help="quantise to int8 (static, calibrated on noised training images)")
    p.add_argument("--calibration-batches", type=positive_int("--calibration-batches"), default=16)
    p.set_defaults(func=cmd_export)


def cmd_distill(args) -> int:
    from diffusio.generative.cheap.distill import DistillConfig, distill

    if args.batch_size > args.trajectories:  # found by the fuzz: a huge batch was a TypeError traceback
        raise UsageError(f"--batch-size {args.batch_size} is more than --trajectories {args.trajectories}; "
                         "the student learns from batches of trajectories")
    from diffusio._resources import check_memory

    check_memory(4.0 * 2 * 28 * 28 * args.trajectories, f"--trajectories {args.trajectories}", "ask for fewer")

    cfg = DistillConfig(teacher=args.teacher, out=args.out, trajectories=args.trajectories,
                        teacher_steps=args.teacher_steps, guidance=args.guidance, train_steps=args.train_steps,
                        batch_size=args.batch_size, lr=args.lr, seed=args.seed, every=args.every,
                        minutes=args.minutes, threads=args.threads, quiet=args.quiet)
    out = distill(cfg, resume=args.resume)
    print(f"student saved in {out}; sample it with: diffusio generate --model {out} --steps 1|2|4")
    return 0


def cmd_export(args) -> int:
    from diffusio.generative.cheap.export import export

    result = export(args.model, args.output, fmt=args.format, int8=args.int8,
                    calibration_batches=args.calibration_batches)
    if result.int8 is None:
        print(f"wrote {result.path} ({result.megabytes:.1f} MB); run it with: diffusio generate --onnx {result.path}")
        return 0
    print(f"wrote {result.path} ({result.megabytes:.1f} MB, int8)")
    print("operators on int8:", json.dumps(result.int8["int8"]))
    print("operators left in float:", json.dumps(result.int8["float"]))
    return 0
