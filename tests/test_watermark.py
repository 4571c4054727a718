"""The watermark in the starting noise: keyed, detected by inversion, absent from everything else."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from diffusio.cli.main import main
from diffusio.generative.images import make_grid, read_model_images, split_grid
from diffusio.generative.watermark import THRESHOLD, detect, key_pattern, scores, survives


def unit(pixels):
    return pixels.astype(np.float32)[:, None] / 127.5 - 1.0


def test_key_patterns_are_signs_fixed_by_the_key():
    a, b = key_pattern("k1", (1, 28, 28)), key_pattern("k2", (1, 28, 28))
    assert set(a.unique().tolist()) == {-1.0, 1.0}
    assert torch.equal(a, key_pattern("k1", (1, 28, 28))) and not torch.equal(a, b)
    assert abs(float((a == b).float().mean()) - 0.5) < 0.06


def test_score_under_a_key_the_image_does_not_carry_is_standard_normal():
    # the null the p-values rest on: whatever the latent (here with structure and an offset),
    # its score against keys independent of it is N(0, 1)
    latent = torch.linspace(-2, 3, 784).reshape(1, 1, 28, 28) ** 2 + 0.5
    s = np.array([scores(latent, key_pattern(f"key {i}", (1, 28, 28)))[0] for i in range(3000)])
    assert abs(s.mean()) < 0.06 and abs(s.std() - 1) < 0.05
    assert (s > THRESHOLD).mean() == 0


def test_marked_images_are_detected_and_others_are_not(shipped):
    labels = list(range(8))
    marked = shipped.generate(label=labels, n=8, seed=0, watermark=True)
    plain = shipped.generate(label=labels, n=8, seed=0)  # off unless $DIFFUSIO_WATERMARK_KEY is set
    other = shipped.generate(label=labels, n=8, seed=0, watermark="another key")
    assert detect(shipped, unit(marked)).marked.all()
    assert not detect(shipped, unit(plain)).marked.any()
    assert not detect(shipped, unit(other)).marked.any()
    assert detect(shipped, unit(other), key="another key").marked.all()
    jpeg = []
    for im in marked:
        buf = io.BytesIO()
        Image.fromarray(im).save(buf, format="JPEG", quality=90)
        jpeg.append(np.asarray(Image.open(buf)))
    assert detect(shipped, unit(np.stack(jpeg))).marked.mean() >= 7 / 8


def test_grids_split_back_into_tiles():
    tiles = np.random.default_rng(0).integers(0, 200, (5, 28, 28), dtype=np.uint8)
    for scale in (1, 3):
        assert np.array_equal(split_grid(make_grid(tiles, scale=scale), 28, 28), tiles)  # empty cell dropped
    assert split_grid(np.zeros((40, 41), np.uint8), 28, 28) is None


def test_cli_detects_in_grids_and_arrays(tmp_path, capsys):
    marked, plain = tmp_path / "marked.png", tmp_path / "plain.npy"
    assert main(["generate", "a bag", "-n", "3", "--watermark", "-o", str(marked)]) == 0
    assert main(["generate", "a bag", "-n", "2", "-o", str(plain)]) == 0
    capsys.readouterr()
    assert main(["watermark", "detect", str(marked), str(plain), "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert out.count(": yes") == 3 and out.count(": no") == 2 and "3 of 5 images" in out
    assert len(read_model_images(marked, (1, 28, 28))) == 3


@pytest.mark.parametrize("argv,message", [
    (["watermark", "detect", "missing.png"], "no such file"),
    (["watermark", "detect", "big.png"], "neither one 28x28 image nor a grid"),
    (["watermark", "detect", "junk.png"], "cannot read image"),
    (["generate", "x", "--no-watermark", "--watermark-key", "k", "-o", "o.png"], "contradicts"),
    (["generate", "x", "--no-watermark", "--watermark", "-o", "o.png"], "contradicts"),
])
def test_bad_watermark_input(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    Image.fromarray(np.zeros((40, 41), np.uint8)).save("big.png")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


def test_samplers_that_wash_out_the_mark_are_named(tmp_path, capsys):
    assert survives("dpmpp-2m", 20) and survives("consistency", 1)
    assert not survives("ddpm", 20) and not survives("consistency", 4)
    assert main(["generate", "x", "-n", "1", "--sampler", "ddpm", "--steps", "3", "--watermark",
                 "-o", str(tmp_path / "d.png")]) == 0
    assert "washes out the watermark" in capsys.readouterr().err


def test_the_environment_key_marks_every_image(shipped, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DIFFUSIO_WATERMARK_KEY", "team key")
    marked = shipped.generate(label=list(range(4)), n=4, seed=1)
    assert detect(shipped, unit(marked), key="team key").marked.all()
    assert main(["generate", "a bag", "-n", "2", "--no-watermark", "-o", str(tmp_path / "p.npy")]) == 0
    assert not detect(shipped, unit(np.load(tmp_path / "p.npy")), key="team key").marked.any()
