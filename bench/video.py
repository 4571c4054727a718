"""diffusio.video against its goals, beside real clips and classical baselines, in one run.

    python bench/video.py --model runs/video --per-prompt 5 --out runs/bench/video

1. Text fidelity: every (garment, motion) prompt -- 10 x 6 -- ``--per-prompt`` times, in a
   training phrasing and in a held-out one; the object classifier's frame accuracy, the motion read
   from the centroid path, and consistency (one class in every frame), beside the same judges on
   real test-split clips.
2. Fréchet distance on the space-time classifier's features, beside the real-vs-real floor.
3. Denoising (PSNR) at two noise levels: the space-time model (given the noise level, and with the
   level estimated from the clips as ``video denoise`` does without ``--sigma``), the same network frame by frame,
   OpenCV's fastNlMeansDenoisingMulti (strength tuned per level on the same clips: its best), the
   noisy input.  Filling frames 6-10 of 16 (PSNR, SSIM): ours from noise and from the blend
   against linear blending (and a picture, ``fill.png``).
4. Speed: seconds to generate one 16-frame clip.

Prints markdown tables and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from diffusio.cli.args import scales
from diffusio.video.classifier import load_clip_classifier, object_classifier
from diffusio.video.clips import moving_clips
from diffusio.video.editing import blend_frames
from diffusio.video.evaluation import frechet_to_real, judge, prompt_grid, psnr, real_floor, ssim
from diffusio.video.generator import VideoGenerator


def fidelity(gen, obj, per_prompt: int, phrases: str, seed: int, batch: int = 30, **steer) -> tuple[dict, np.ndarray]:
    """The judges' scores of ``per_prompt`` clips of every (garment, motion) prompt; ``steer``: the
    guidance and redraw options of ``generate``."""
    prompts, classes, motions = prompt_grid(gen.config["data"].get("classes") or obj.class_names, per_prompt, phrases)
    clips = []
    for i in range(0, len(prompts), batch):
        part = prompts[i:i + batch]
        clips.append(gen.generate(part, seed=seed + i, **steer))
    clips = np.concatenate(clips)
    scores = judge(clips, classes, motions, obj)
    scores.pop("motions_seen")
    return scores, clips


SPEED_PROMPTS = ["a sneaker moving to the left", "a bag bouncing up and down", "a pair of trousers moving up",
                 "a dress drifting right", "an ankle boot bouncing from side to side", "a coat falling"]


def opencv_denoise(clip: np.ndarray, h: float, window: int = 5) -> np.ndarray:
    import cv2

    frames = [f[..., 0] for f in clip]
    half = window // 2
    padded = frames[half:0:-1] + frames + frames[-2:-half - 2:-1]  # reflect, so every frame has a full window
    return np.stack([cv2.fastNlMeansDenoisingMulti(padded, i + half, window, None, h, 7, 21)
                     for i in range(len(frames))])[..., None]


def denoising(gen, n: int, sigmas=(0.2, 0.4), seed: int = 3) -> list[dict]:
    clean = moving_clips(n, split="test", seed=seed).clips
    rng = np.random.default_rng(seed)
    rows = []
    for sigma in sigmas:
        noisy = np.clip(np.rint(clean + rng.normal(0, sigma * 127.5, clean.shape)), 0, 255).astype(np.uint8)
        joint = gen.denoise(noisy, sigma)
        estimated = gen.denoise(noisy)  # the noise level read from the clips, as `video denoise` does without --sigma
        alone = gen.denoise(noisy, sigma, per_frame=True)
        best_h, best = None, -1.0
        for h in (0.6, 0.8, 1.0, 1.3):  # fastNlMeans' strength in pixel levels, as a multiple of the noise std
            out = np.stack([opencv_denoise(c, h * sigma * 127.5) for c in noisy])
            if psnr(out, clean) > best:
                best_h, best = h, psnr(out, clean)
        rows.append({"sigma": sigma, "noisy": psnr(noisy, clean), "ours (space-time)": psnr(joint, clean),
                     "ours (sigma estimated)": psnr(estimated, clean), "ours (frame by frame)": psnr(alone, clean),
                     "OpenCV NLM multi": best,
                     "opencv_h": best_h * sigma * 127.5})
    return rows


def filling(gen, n: int, strength: float, seed: int = 4) -> dict:
    clips = moving_clips(n, split="test", seed=seed).clips
    missing = list(range(5, 10))
    rows = {"ours (from noise)": gen.fill(clips, missing, strength=1.0, seed=seed),
            "ours (from noise, recon 30)": gen.fill(clips, missing, strength=1.0, recon=30.0, seed=seed),
            f"ours (from the blend, strength {strength:g})": gen.fill(clips, missing, strength=strength, seed=seed),
            "linear blending": np.stack([blend_frames(c, missing) for c in clips])}
    out = {name: {"psnr": psnr(v[:, missing], clips[:, missing]), "ssim": ssim(v[:, missing], clips[:, missing])}
           for name, v in rows.items()}
    return {**out, "n": n}, {"truth": clips, **rows}


def fill_picture(rows: dict, path: Path, clips=(0, 1, 2), frames=range(4, 11)) -> None:
    """Frames 5-11 (6-10 filled) of a few test clips: the truth and every method, one row each."""
    from diffusio.figures import figure, save

    names = [k for k in rows if "recon" not in k]
    grid = np.concatenate([np.concatenate(list(rows[name][c, list(frames), ..., 0]), axis=1)
                           for c in clips for name in names], axis=0)
    with figure(width=0.62 * len(frames) + 2.4, height=0.62 * len(names) * len(clips)) as (fig, ax):
        ax.imshow(grid, cmap="gray", vmin=0, vmax=255)
        size = rows["truth"].shape[2]
        labels = [name.replace("ours (", "").rstrip(")") for name in names]  # short: the axis has no room
        ax.set_yticks([size * (i + 0.5) for i in range(len(names) * len(clips))], labels * len(clips), fontsize=7)
        ax.set_xticks([size * (i + 0.5) for i in range(len(frames))], [str(f + 1) for f in frames], fontsize=7)
        ax.set_xlabel("frame (6-10 filled; 5 and 11 given)", fontsize=8)
        save(fig, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="moving-fashion")
    ap.add_argument("--per-prompt", type=int, default=5)
    ap.add_argument("--enhance-n", type=int, default=60, help="test clips for denoising and filling")
    ap.add_argument("--fill-strength", type=float, default=0.45, help="the fill row that starts from the blend "
                                                                       "(0.45: the default of fill)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/bench/video")
    ap.add_argument("--sampler", default=None, help="sampler for generation (default: the model's)")
    ap.add_argument("--motion-guidance", type=float, default=None,
                    help="motion guidance for generation (default: the model's; 0: off)")
    ap.add_argument("--garment-guidance", type=float, default=None,
                    help="garment guidance for generation (default: the model's; 0: off)")
    ap.add_argument("--nudges", type=scales, default=None, help="garment guidance of the first redraw rounds, e.g. "
                                                                "3,3; none: no round (default: the model's)")
    ap.add_argument("--redraws", type=int, default=None,
                    help="garment redraws (default: the model's; 0: none, the clips of before)")
    ap.add_argument("--consistency", type=float, default=None,
                    help="pull generation and denoising toward one look of the object in every frame, 0-1 "
                         "(default: the model's)")
    ap.add_argument("--fidelity-only", action="store_true",
                    help="only the text-fidelity table (both phrasings) and the FD: the comparison of two trainings")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    gen = VideoGenerator.load(args.model)
    if args.sampler:
        gen.config["sampling"]["sampler"] = args.sampler
    obj, clip_judge = object_classifier(), load_clip_classifier()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    guidance = args.motion_guidance
    result = {"model": str(args.model), "trained": gen.config.get("trained"), "per_prompt": args.per_prompt,
              "sampler": gen.sampling("sampler"),
              "motion_guidance": gen.config.get("motion_guide", {}).get("scale", 0.0) if guidance is None else guidance}

    result["redraws"] = gen.config["sampling"].get("redraws", 0) if args.redraws is None else args.redraws
    garment = args.garment_guidance
    result["garment_guidance"] = gen.config.get("garment_guide", {}).get("scale", 0.0) if garment is None else garment
    nudges = args.nudges
    result["nudges"] = gen.config["sampling"].get("nudges") if nudges is None else list(nudges)
    if args.consistency is not None:  # generation and denoising alike
        gen.config["sampling"]["consistency"] = args.consistency
    result["consistency"] = gen.consistency(None)
    steer = {"motion_guidance": guidance, "garment_guidance": garment, "redraws": args.redraws, "nudges": nudges}
    gen.generate("a coat moving up", steps=1, **steer)  # untimed: loads the text encoder and checks
    times = []
    for prompt in SPEED_PROMPTS:  # one clip at a time, as a user asks for one; redraws make some slower
        t = time.perf_counter()
        gen.generate(prompt, seed=0, **steer)
        times.append(time.perf_counter() - t)
    result["seconds_per_clip"], result["seconds_per_clip_max"] = float(np.mean(times)), max(times)
    train, clips = fidelity(gen, obj, args.per_prompt, "train", args.seed, **steer)
    held, _ = fidelity(gen, obj, args.per_prompt, "held-out", args.seed + 100_000, **steer)
    floor = real_floor(len(clips), obj)
    floor.pop("motions_seen")
    result["fidelity"] = {"real test clips": floor, "ours, training phrasings": train, "ours, held-out phrasings": held}
    result["fd"] = frechet_to_real(clips, clip_judge)
    np.save(out / "clips-training-phrasings.npy", clips)
    if args.fidelity_only:
        (out / "video.json").write_text(json.dumps(result, indent=2))
        print_fidelity(args.model, result)
        return print_fd(result["fd"])
    result["denoise"] = denoising(gen, args.enhance_n)
    result["fill"], fills = filling(gen, args.enhance_n, args.fill_strength)
    fill_picture(fills, out / "fill.png")
    (out / "video.json").write_text(json.dumps(result, indent=2))

    print_fidelity(args.model, result)
    print_fd(result["fd"])
    print("| noise sigma | noisy | ours (space-time) | ours, sigma estimated | ours (frame by frame) | OpenCV NLM multi |\n"
          "|---|---|---|---|---|---|")
    for r in result["denoise"]:
        print(f"| {r['sigma']} | {r['noisy']:.2f} | {r['ours (space-time)']:.2f} | {r['ours (sigma estimated)']:.2f} | "
              f"{r['ours (frame by frame)']:.2f} | "
              f"{r['OpenCV NLM multi']:.2f} (h={r['opencv_h']:.0f}) |")
    f = result["fill"]
    print(f"\nfill frames 6-10 of 16 (n={f['n']}):")
    for name in [k for k in f if k != "n"]:
        print(f"  {name}: PSNR {f[name]['psnr']:.2f}, SSIM {f[name]['ssim']:.3f}")


def print_fd(fd: dict) -> None:
    print(f"\nFD (space-time classifier features, n={fd['n']}): ours {fd['fd']:.2f}, real-vs-real floor {fd['floor']:.2f}\n")


def print_fidelity(model: str, result: dict) -> None:
    print(f"model {model}: {result['trained']}; sampler {result['sampler']}, motion guidance "
          f"{result['motion_guidance']:g}, redraws {result['redraws']}, consistency {result['consistency']:g}; "
          f"one 16-frame clip in "
          f"{result['seconds_per_clip']:.2f} s on average over {len(SPEED_PROMPTS)} prompts "
          f"(at most {result['seconds_per_clip_max']:.2f} s)\n")
    print("| clips | n | frames naming the garment | motion as prompted | one class throughout |\n|---|---|---|---|---|")
    for name, s in result["fidelity"].items():
        print(f"| {name} | {s['n']} | {s['frame_accuracy']:.3f} | {s['motion_accuracy']:.3f} | {s['consistency']:.3f} |")


if __name__ == "__main__":
    main()
