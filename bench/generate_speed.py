"""Training steps/s and sampling images/s of the shipped model's configuration on this machine.

    python bench/generate_speed.py
"""

from __future__ import annotations

import tempfile
import time

import torch

from diffusio.generative import Generator
from diffusio.generative.training.trainer import TrainConfig, Trainer


def main():
    torch.set_num_threads(2)
    gen = Generator.load("fashion")
    net = gen.model.config["net"]

    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(data="fashion-mnist", out=f"{tmp}/run", steps=10**9, batch_size=64, base=net["base"],
                          mults=tuple(net["mults"]), blocks=net["blocks"], attn_levels=tuple(net["attn_levels"]),
                          quiet=True, every=0)
        trainer = Trainer(cfg)
        for _ in range(3):
            trainer.train_step()  # warm-up
        start = time.perf_counter()
        for _ in range(20):
            trainer.train_step()
        train_rate = 20 / (time.perf_counter() - start)

    start = time.perf_counter()
    gen = Generator.load("fashion")
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    gen.condition(1, prompt="a speed test prompt never cached %f" % time.time())
    text_s = time.perf_counter() - start
    gen.generate(label=0, n=8, steps=4, seed=0)  # warm-up
    rows = []
    for sampler, steps in (("dpmpp-2m", 20), ("dpmpp-2m", 10), ("heun", 10)):
        start = time.perf_counter()
        made = gen.sample(label=list(range(10)) * 6 + [0] * 4, n=64, steps=steps, sampler=sampler, seed=0)
        sec = time.perf_counter() - start
        rows.append((sampler, steps, made.nfe, 64 / sec))
    print(f"model: {net}, {sum(p.numel() for p in gen.denoiser.parameters()) / 1e6:.2f} M parameters")
    print(f"training: {train_rate:.2f} steps/s at batch 64 ({train_rate * 64:.0f} images/s)")
    print(f"load model: {load_s:.2f} s; first prompt embedding (encoder load + encode): {text_s:.2f} s")
    print("| sampler | steps | NFE | images/s (64 images, with guidance: 2 passes per NFE) |")
    print("|---|---|---|---|")
    for s, steps, nfe, rate in rows:
        print(f"| {s} | {steps} | {nfe:g} | {rate:.1f} |")


if __name__ == "__main__":
    main()
