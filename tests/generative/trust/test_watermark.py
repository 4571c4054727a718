"""The watermark in the starting noise: keyed, detected by inversion, absent from everything else."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from diffusio.cli.main import main
from diffusio.generative.data.images import make_grid, read_model_images, split_grid
from diffusio.generative.trust.watermark import (BRIGHT_WEIGHT, DARK_WEIGHT, FALSE_ALARM, PATTERNS, THRESHOLD, detect,
                                           key_patterns, mark_noise, p_values, pixel_weights, scores, survives)


def unit(pixels):
    return pixels.astype(np.float32)[:, None] / 127.5 - 1.0


def test_key_patterns_are_banks_of_signs_fixed_by_the_key():
    a, b = key_patterns("k1", (1, 28, 28)), key_patterns("k2", (1, 28, 28))
    assert a.shape == (PATTERNS, 1, 28, 28) and set(a.unique().tolist()) == {-1.0, 1.0}
    assert torch.equal(a, key_patterns("k1", (1, 28, 28))) and not torch.equal(a, b)
    assert abs(float((a == b).float().mean()) - 0.5) < 0.01
    assert abs(float((a[0] == a[1]).float().mean()) - 0.5) < 0.06  # patterns of one key differ too


def test_each_image_takes_one_pattern_and_the_batch_keeps_plain_noise_statistics():
    bank = key_patterns("k1", (1, 28, 28))
    noise = torch.randn(4000, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    marked = mark_noise(noise, bank, torch.Generator().manual_seed(1))
    assert torch.equal(marked.abs(), noise.abs())
    hits = (marked.sign().flatten(1) @ bank.flatten(1).float().T).amax(1)
    assert (hits == 28 * 28).all()  # every image carries one whole pattern
    # what the first, single-pattern design broke: the mean (0.8 per pixel) and the spread
    assert marked.mean(0).abs().max() < 0.2 and abs(float(marked.std()) - 1) < 0.01
    again = mark_noise(noise, bank, torch.Generator().manual_seed(1))
    assert torch.equal(marked, again)  # the seed fixes the choice


@pytest.mark.slow
def test_score_under_a_key_the_image_does_not_carry_follows_the_null():
    # the null the p-values rest on: whatever the latent (here with structure and an offset),
    # its correlation with each pattern of an unrelated key is N(0, 1), and the best of a bank
    # stays under the threshold
    latent = torch.linspace(-2, 3, 784).reshape(1, 1, 28, 28) ** 2 + 0.5
    single = np.concatenate([[scores(latent, pattern)[0] for pattern in key_patterns(f"key {i}", (1, 28, 28))]
                             for i in range(3)])
    assert abs(single.mean()) < 0.06 and abs(single.std() - 1) < 0.05
    best = np.array([scores(latent, key_patterns(f"key {i}", (1, 28, 28)))[0] for i in range(200)])
    assert (best > THRESHOLD).sum() <= 5 and 3.2 < np.median(best) < 4.0  # max of 4096 N(0,1): median 3.6
    # (FALSE_ALARM = 5e-3 expects 1 of 200 over the threshold; P(6 or more) = 0.06%)
    assert 0.03 < (p_values(best) < 0.1).mean() < 0.2  # p-values of the best match are uniform
    assert abs(p_values(np.array([THRESHOLD]))[0] - FALSE_ALARM) < 1e-5


def test_pixel_weights_keep_the_null_and_count_clamped_pixels_less():
    image = torch.linspace(-1, 1, 784).reshape(1, 1, 28, 28)  # black to white
    w = pixel_weights(image).flatten()
    assert w[0] == DARK_WEIGHT and w[-1] == BRIGHT_WEIGHT and w[392] == 1.0
    # weights that depend on the image only leave each pattern's correlation N(0, 1)
    latent = torch.linspace(-2, 3, 784).reshape(1, 1, 28, 28) ** 2 + 0.5
    single = np.concatenate([[scores(latent, pattern, pixel_weights(image))[0]
                              for pattern in key_patterns(f"key {i}", (1, 28, 28))] for i in range(3)])
    assert abs(single.mean()) < 0.06 and abs(single.std() - 1) < 0.05


@pytest.mark.slow
def test_marked_images_are_detected_and_others_are_not(shipped):
    labels = list(range(8))
    marked = shipped.generate(label=labels, n=8, seed=0, watermark=True)
    plain = shipped.generate(label=labels, n=8, seed=0, watermark=False)
    assert detect(shipped, unit(shipped.generate(label=labels, n=8, seed=0))).marked.all()  # on by default
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


def test_labelled_demo_pictures_split_back_into_tiles():
    from diffusio.generative.data.images import labelled_rows, split_labelled

    tiles = np.random.default_rng(1).integers(0, 200, (6, 28, 28), dtype=np.uint8)
    long = "an evening dress with a very long description that cannot fit"
    picture = labelled_rows([tiles[:3], tiles[3:]], ["a bag", long])
    assert np.array_equal(split_labelled(picture, 28, 28), tiles)  # the long label stops short of the images
    assert split_labelled(make_grid(tiles), 28, 28) is None


def test_cli_detects_in_grids_and_arrays(tmp_path, capsys):
    marked, plain = tmp_path / "marked.png", tmp_path / "plain.npy"
    assert main(["generate", "a bag", "-n", "3", "--watermark", "-o", str(marked)]) == 0
    assert main(["generate", "a bag", "-n", "2", "--no-watermark", "-o", str(plain)]) == 0
    capsys.readouterr()
    assert main(["watermark", "detect", str(marked), str(plain), "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert out.count(": yes") == 3 and out.count(": no") == 2 and "3 of 5 images" in out
    assert len(read_model_images(marked, (1, 28, 28))) == 3


@pytest.mark.parametrize("argv,message", [
    (["watermark", "detect", "missing.png"], "no such file"),
    (["watermark", "detect", "big.png"], "neither one 28x28 image"),
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


def fashion_grid(start, n, scale):
    from diffusio.generative.data.datasets import load_dataset
    from diffusio.generative.data.datasets import to_uint8

    tiles = to_uint8(load_dataset("fashion-mnist", "test").images[start:start + n])
    grid = make_grid(tiles) if n > 1 else tiles[0]
    return grid.repeat(scale, 0).repeat(scale, 1)


def test_large_outputs_carry_an_invisible_watermark_stamp_the_standard_decoder_reads():
    from imwatermark import WatermarkDecoder

    from diffusio.errors import UsageError
    from diffusio.generative.trust.stamp import SCALE, key_bits, read_stamp, stamp

    for start, n, scale in ((0, 16, 3), (100, 1, 10), (200, 64, 2)):
        grid = fashion_grid(start, n, scale)
        marked = stamp(grid, "k1")
        assert 10 * np.log10(255 ** 2 / ((marked.astype(float) - grid) ** 2).mean()) > 40  # dB PSNR
        bits = WatermarkDecoder("bits", 32).decode(np.repeat(marked[..., None], 3, 2), "dwtDct", scales=[SCALE, 0, 0])
        assert (np.asarray(bits, bool) == key_bits("k1")).sum() >= 29
        buf = io.BytesIO()
        Image.fromarray(marked).save(buf, format="JPEG", quality=90)
        assert read_stamp(np.asarray(Image.open(buf)), "k1").marked
        assert not read_stamp(marked, "k2").marked and not read_stamp(grid, "k1").marked
    colour = np.stack([fashion_grid(0, 16, 3), fashion_grid(16, 16, 3), fashion_grid(32, 16, 3)], -1)
    assert read_stamp(stamp(colour, "k1"), "k1").marked
    with pytest.raises(UsageError, match="256x256"):
        stamp(fashion_grid(0, 1, 5), "k1")  # 140x140


def test_cli_stamps_large_grids_only_when_marking(tmp_path, capsys):
    big, plain = tmp_path / "big.png", tmp_path / "plain.png"
    assert main(["generate", "a bag", "-n", "1", "--scale", "10", "--watermark", "-o", str(big)]) == 0
    assert main(["generate", "a bag", "-n", "1", "--scale", "10", "--no-watermark", "-o", str(plain)]) == 0
    capsys.readouterr()
    assert main(["watermark", "detect", str(big), str(plain)]) == 0
    out = capsys.readouterr().out
    assert f"{big}: invisible-watermark stamp yes" in out and f"{plain}: invisible-watermark stamp no" in out
    assert f"{big}: yes" in out and f"{plain}: no" in out
