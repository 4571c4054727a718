"""Appearance consistency: one sprite translated is a fixed point, an odd frame takes the others' look,
and the sampler's estimate is pulled toward it by the strength asked for."""

import numpy as np
import pytest
import torch

from diffusio.cli.main import main
from diffusio.errors import UsageError
from diffusio.video.clips import moving_clips
from diffusio.video.consistency import ConsistentDenoiser, centroids, one_look, shift
from diffusio.video.generator import to_tensor
from diffusio.video.io import read_video
from diffusio.video.training import train_video


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("video") / "run"
    return train_video(out, steps=2, every=2, frames=4, batch_size=2, base=8, mults=(1, 2), quiet=True, bf16="off")


def test_real_clips_are_already_one_look():
    x = to_tensor(moving_clips(40, seed=3).clips)
    assert torch.equal(one_look(x), x)


def test_the_centroids_follow_the_object_pixel_for_pixel():
    data = moving_clips(5, seed=1)
    ours = centroids(to_tensor(data.clips)).double().numpy()
    assert np.allclose(ours - ours[:, :1], data.paths[:, 0] - data.paths[:, :1, 0], atol=1e-3)


def test_shift_moves_by_whole_pixels_and_brings_in_black():
    x = torch.arange(16.0).reshape(1, 1, 1, 4, 4)
    moved = shift(x, torch.tensor([[1]]), torch.tensor([[-1]]))  # one right, one up
    assert torch.equal(moved[0, 0, 0, :3, 1:], x[0, 0, 0, 1:, :3])
    assert (moved[0, 0, 0, 3] == -1).all() and (moved[0, 0, 0, :, 0] == -1).all()


def test_an_odd_frame_takes_the_look_of_the_others():
    data = moving_clips(2, seed=0)
    clip = data.clips[:1].copy()
    x, y = data.paths[0, 0, 5]
    clip[0, 5, y:y + 16, x:x + 16] = np.flipud(clip[0, 5, y:y + 16, x:x + 16])  # the garment upside down, once
    held, real = one_look(to_tensor(clip)), to_tensor(data.clips[:1])
    others = [t for t in range(16) if t != 5]
    assert torch.equal(held[:, :, others], real[:, :, others])
    # the flip moved the odd frame's centroid by half a pixel: the right garment, within a pixel of its place
    near = [shift(real[:, :, 5:6], torch.tensor([[dx]]), torch.tensor([[dy]])) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]
    assert any(torch.equal(held[:, :, 5:6], n) for n in near)
    assert not torch.equal(to_tensor(clip)[:, :, 5:6], held[:, :, 5:6])


class Fixed(torch.nn.Module):
    """A denoiser that always answers the same clip."""

    sigma_min, sigma_max = 0.002, 80.0

    def __init__(self, clip):
        super().__init__()
        self.clip = clip

    def forward(self, x, sigma, cond=None):
        return self.clip.clone()


def test_the_estimate_moves_toward_one_look_by_the_strength():
    data = moving_clips(1, seed=0)
    clip = data.clips.copy()
    clip[0, 3] = np.roll(clip[0, 3], 1, axis=1)[..., ::-1, :]  # one frame mirrored: another look
    d = to_tensor(clip)
    x, sigma = torch.zeros_like(d), torch.tensor(1.0)
    assert torch.equal(ConsistentDenoiser(Fixed(d), 0.0)(x, sigma), d)
    full = ConsistentDenoiser(Fixed(d), 1.0)(x, sigma)
    assert torch.equal(full, one_look(d)) and not torch.equal(full, d)
    assert torch.allclose(ConsistentDenoiser(Fixed(d), 0.5)(x, sigma), (d + full) / 2)


@pytest.mark.parametrize("bad", [-0.1, 1.5, True, "1", float("nan")])
def test_strength_outside_zero_to_one_is_refused(bad):
    with pytest.raises(UsageError, match="consistency must be a number from 0"):
        ConsistentDenoiser(Fixed(torch.zeros(1)), bad)


def test_generate_takes_the_strength_from_the_call_or_the_model(tiny):
    plain = tiny.generate("a bag moving up", frames=4, steps=3, seed=1)
    held = tiny.generate("a bag moving up", frames=4, steps=3, seed=1, consistency=1.0)
    assert not np.array_equal(plain, held)
    assert np.array_equal(held, tiny.generate("a bag moving up", frames=4, steps=3, seed=1, consistency=1.0))
    tiny.config["sampling"]["consistency"] = 1.0
    try:
        assert np.array_equal(tiny.generate("a bag moving up", frames=4, steps=3, seed=1), held)
        assert np.array_equal(tiny.generate("a bag moving up", frames=4, steps=3, seed=1, consistency=0), plain)
    finally:
        del tiny.config["sampling"]["consistency"]
    with pytest.raises(UsageError, match="consistency"):
        tiny.generate("a bag", frames=2, steps=2, consistency=2)
    tiny.config["data"]["objects"] = 2
    try:
        with pytest.warns(UserWarning, match="one object per clip"):
            tiny.generate("a bag", frames=2, steps=2, consistency=1)
    finally:
        tiny.config["data"]["objects"] = 1


@pytest.mark.slow
def test_cli_generates_with_consistency_and_refuses_out_of_range(tiny, tmp_path, capsys):
    gif = tmp_path / "held.gif"
    assert main(["video", "generate", "a coat moving up", "--model", str(tiny.path), "--frames", "4", "--steps", "2",
                 "--scale", "1", "--consistency", "1", "-o", str(gif)]) == 0
    assert read_video(gif).shape == (4, 32, 32, 1)
    bad = tmp_path / "bad.gif"
    with pytest.raises(SystemExit) as stop:
        main(["video", "generate", "a coat", "--model", str(tiny.path), "--consistency", "1.5", "-o", str(bad)])
    assert stop.value.code == 2
    assert "--consistency" in capsys.readouterr().err and not bad.exists()


def test_denoise_takes_the_strength_and_frame_by_frame_ignores_it(tiny):
    clip = moving_clips(1, frames=4, seed=2).clips[0]
    noisy = np.clip(clip.astype(int) + np.random.default_rng(0).integers(-40, 40, clip.shape), 0, 255).astype(np.uint8)
    held = tiny.denoise(noisy, 0.3, consistency=1)
    assert not np.array_equal(held, tiny.denoise(noisy, 0.3, consistency=0))
    assert np.array_equal(tiny.denoise(noisy, 0.3, per_frame=True, consistency=1),
                          tiny.denoise(noisy, 0.3, per_frame=True, consistency=0))  # the image baseline: not used
    tiny.config["sampling"]["consistency"] = 1.0
    try:
        assert np.array_equal(tiny.denoise(noisy, 0.3), held)
        tiny.config["sampling"]["denoise_consistency"] = 0.0  # denoising's own default comes first
        assert np.array_equal(tiny.denoise(noisy, 0.3), tiny.denoise(noisy, 0.3, consistency=0))
    finally:
        del tiny.config["sampling"]["consistency"]
        tiny.config["sampling"].pop("denoise_consistency", None)
    with pytest.raises(UsageError, match="consistency"):
        tiny.denoise(noisy, 0.3, consistency=-1)
