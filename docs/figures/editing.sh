#!/usr/bin/env bash
# Before/after pictures for docs/editing.md, made with the commands the page shows.
# Run from the repository root with the venv active:  bash docs/figures/editing.sh
set -euo pipefail
out=docs/img/editing
tmp=$(mktemp -d)
mkdir -p "$out"
# inputs: Fashion-MNIST test images (a shirt, a sneaker, a boot, a bag)
python - "$tmp" <<'PY'
import sys
import numpy as np
from PIL import Image
from diffusio.generative.data.datasets import load_dataset, to_uint8
test = load_dataset("fashion-mnist", "test")
for name, index in {"shirt": 7, "sneaker": 9, "boot": 0, "bag": 18}.items():
    Image.fromarray(to_uint8(test.images[index:index + 1])[0]).save(f"{sys.argv[1]}/{name}.png")
rng = np.random.default_rng(0)
noisy = test.images[7:8] + rng.normal(size=(1, 1, 28, 28)).astype(np.float32) * 2 * 0.2
Image.fromarray(to_uint8(noisy)[0]).save(f"{sys.argv[1]}/noisy.png")
PY
cp "$tmp"/{shirt,sneaker,boot,bag,noisy}.png "$out"/
diffusio inpaint "$out/shirt.png" --box 0,14,28,28 --seed 0 -o "$out/shirt-inpainted.png"
diffusio inpaint "$out/shirt.png" "a dress" --box 0,14,28,28 --seed 0 -o "$out/shirt-inpainted-dress.png"
diffusio img2img "$out/sneaker.png" "an ankle boot" --strength 0.6 --seed 0 -o "$out/sneaker-to-boot.png"
diffusio interpolate "$out/boot.png" "$out/bag.png" --frames 8 -o "$out/boot-to-bag.png" --gif "$out/boot-to-bag.gif"
diffusio denoise "$out/noisy.png" -o "$out/denoised.png"
rm -rf "$tmp"
