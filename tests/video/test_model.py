"""The video model end to end on a tiny network: training, resume, generate, denoise, fill, extend."""

import numpy as np
import pytest
import torch

from diffusio.errors import UsageError
from diffusio.generative.checkpoint import files as ckpt
from diffusio.video.clips import moving_clips
from diffusio.video.editing import blend_frames
from diffusio.video.generator import VideoGenerator
from diffusio.video.training import train_video

TINY = dict(frames=4, batch_size=2, base=8, mults=(1, 2), quiet=True, bf16="off")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("video") / "run"
    return train_video(out, steps=3, every=3, **TINY)


def test_generates_the_asked_frames_and_repeats_with_a_seed(tiny):
    a = tiny.generate("a bag moving up", n=2, frames=6, steps=3, seed=1)
    b = tiny.generate("a bag moving up", n=2, frames=6, steps=3, seed=1)
    assert a.shape == (2, 6, 32, 32, 1) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, tiny.generate("a bag moving up", n=2, frames=6, steps=3, seed=2))
    assert tiny.generate(["a coat", None], frames=2, steps=2).shape[0] == 2


def test_saved_model_loads_and_samples_the_same(tiny):
    again = VideoGenerator.load(tiny.path)
    assert np.array_equal(again.generate("a shirt", frames=4, steps=2), tiny.generate("a shirt", frames=4, steps=2))


def test_resume_equals_an_uninterrupted_run(tmp_path):
    whole = train_video(tmp_path / "whole", steps=4, every=2, **TINY)
    train_video(tmp_path / "part", steps=2, every=2, **TINY)
    resumed = train_video(tmp_path / "part", steps=4, every=2, resume=True, **TINY)
    for (k, a), b in zip(whole.denoiser.state_dict().items(), resumed.denoiser.state_dict().values()):
        assert torch.equal(a, b), k


def test_resume_refuses_other_settings(tmp_path, tiny):
    with pytest.raises(UsageError, match="already holds a model"):
        train_video(tiny.path, steps=3, **TINY)
    with pytest.raises(UsageError, match="other settings|other data"):
        train_video(tiny.path, steps=3, resume=True, **{**TINY, "batch_size": 3})


def test_noise_shift_raises_the_clips_noise_levels_only(tmp_path, monkeypatch):
    """Clip batches draw log sigma around -1.2 + noise_shift, still batches around -1.2; the run
    records the shift, and a run without it keeps its old settings (so it still resumes)."""
    import diffusio.video.training as vt

    seen, loss = [], vt.edm_loss
    monkeypatch.setattr(vt, "edm_loss", lambda den, x0, *a, **kw: seen.append((x0.shape[2], kw["p_mean"]))
                        or loss(den, x0, *a, **kw))
    run = train_video(tmp_path / "shift", steps=12, every=12, image_fraction=0.5, noise_shift=1.5, **TINY)
    assert {p for frames, p in seen if frames > 1} == {-1.2 + 1.5} and {p for frames, p in seen if frames == 1} == {-1.2}
    assert run.config["settings"]["noise_shift"] == 1.5
    assert "noise_shift" not in train_video(tmp_path / "plain", steps=1, every=1, **TINY).config["settings"]
    for bad in (float("inf"), float("nan"), -0.5, 4.5, "1"):
        with pytest.raises(UsageError, match=r"noise_shift must be a number of log sigma in \[0, 4\]"):
            train_video(tmp_path / "bad", steps=1, noise_shift=bad, **TINY)
        assert not (tmp_path / "bad").exists()


def test_init_starts_from_the_parent_and_records_it(tmp_path, tiny):
    # one step at lr 0 changes nothing: the child's weights are the parent's, whatever base/mults say
    child = train_video(tmp_path / "child", steps=1, every=1, lr=0.0, init=tiny.path,
                        **{**TINY, "base": 4, "mults": (1,)})
    assert child.config["net"] == tiny.config["net"]
    assert child.config["init"] == {"model": str(tiny.path), "steps": 3, "wall_seconds": tiny.config["trained"]["wall_seconds"]}
    for (k, a), b in zip(tiny.denoiser.net.state_dict().items(), child.denoiser.net.state_dict().values()):
        assert torch.equal(a, b), k
    assert VideoGenerator.load(tmp_path / "child").config["init"]["model"] == str(tiny.path)


def test_frame_condition_added_by_init_starts_as_the_parent(tmp_path, tiny):
    # the per-frame condition joins the parent's network at zero: the same clips until training moves it
    child = train_video(tmp_path / "child", steps=1, every=1, lr=0.0, init=tiny.path, frame_cond=True, **TINY)
    assert child.config["net"] == {**tiny.config["net"], "frame_cond": True}
    assert np.array_equal(child.generate("a bag moving up", frames=4, steps=3, seed=1),
                          tiny.generate("a bag moving up", frames=4, steps=3, seed=1))
    loaded = VideoGenerator.load(tmp_path / "child")
    assert loaded.denoiser.net.frame_embed is not None
    with pytest.raises(UsageError, match=r"another network \(frame_cond\)"):  # resumes only as it started
        train_video(tmp_path / "child", steps=2, every=1, resume=True, init=tiny.path, **TINY)


def test_frame_condition_depends_on_caption_and_frame():
    from diffusio.video.net import FrameCondition

    torch.manual_seed(0)
    layer = FrameCondition(cond_dim=6, emb=8)
    assert torch.count_nonzero(layer(torch.randn(2, 6), 5)) == 0  # starts at zero
    torch.nn.init.normal_(layer.mlp[-1].weight)
    out = layer(torch.randn(2, 6), 5).reshape(2, 5, 8)
    assert not torch.allclose(out[0, 0], out[0, 1])  # another frame, another embedding
    assert not torch.allclose(out[0], out[1])        # another caption, another path
    with pytest.raises(ValueError, match="needs a condition"):
        from diffusio.video.net import SpaceTimeUNet
        SpaceTimeUNet(base=8, mults=(1,), cond_dim=0, frame_cond=True)


def test_whitened_condition_added_by_init_starts_as_the_parent_and_resumes(tmp_path, tiny):
    child = train_video(tmp_path / "child", steps=1, every=1, lr=0.0, init=tiny.path, whiten_cond=True, **TINY)
    assert child.config["net"] == {**tiny.config["net"], "whiten_cond": True}
    assert np.array_equal(child.generate("a bag moving up", frames=4, steps=3, seed=1),
                          tiny.generate("a bag moving up", frames=4, steps=3, seed=1))
    whitening = VideoGenerator.load(tmp_path / "child").denoiser.net.whiten_embed[0]
    assert not torch.equal(whitening.matrix, torch.eye(384))  # fitted, and saved with the weights
    resumed = train_video(tmp_path / "child", steps=2, every=1, lr=0.0, resume=True, init=tiny.path, whiten_cond=True,
                          **TINY)
    assert torch.equal(resumed.denoiser.net.whiten_embed[0].matrix, whitening.matrix)
    with pytest.raises(UsageError, match=r"another network \(whiten_cond\)"):
        train_video(tmp_path / "child", steps=3, every=1, lr=0.0, resume=True, init=tiny.path, **TINY)


def test_caption_whitening_makes_the_motion_readable():
    """On the raw embedding the nearest motion centroid misnames one training caption in ten
    (the object dominates); whitened, it names nearly all (bench/video_text_probe.py)."""
    from diffusio.generative.conditioning.text import encode
    from diffusio.video.clips import MOTIONS, all_captions
    from diffusio.video.net import CaptionWhitening

    texts, motions = all_captions()
    texts, motions = texts[::4], torch.tensor([MOTIONS.index(m) for m in motions[::4]])  # one template of four
    e = torch.from_numpy(encode(texts)).float()
    layer = CaptionWhitening(e.shape[1])
    layer.fit(e)
    white = layer(e)

    def centroid_accuracy(x):
        centroids = torch.stack([x[motions == k].mean(0) for k in range(len(MOTIONS))])
        return float((torch.cdist(x, centroids).argmin(1) == motions).float().mean())

    assert centroid_accuracy(e) < 0.92 and centroid_accuracy(white) > 0.99  # measured: 0.899 and 0.999
    assert white.mean(0).abs().max() < 1e-3
    assert torch.count_nonzero(layer(torch.zeros(2, e.shape[1]))) == 0  # the null condition stays null
    with pytest.raises(ValueError, match="at least two"):
        layer.fit(e[:1])


def test_init_resumes_only_the_way_it_started(tmp_path):
    parent = train_video(tmp_path / "parent", steps=1, every=1, **TINY)
    train_video(tmp_path / "child", steps=1, every=1, init=parent.path, **TINY)
    with pytest.raises(UsageError, match="started from .*but no init was given"):
        train_video(tmp_path / "child", steps=2, every=1, resume=True, **TINY)
    train_video(parent.path, steps=2, every=1, resume=True, **TINY)  # the parent's folder now holds 2 steps
    resumed = train_video(tmp_path / "child", steps=2, every=1, resume=True, init=parent.path, **TINY)
    assert resumed.config["trained"]["steps"] == 2
    assert resumed.config["init"]["steps"] == 1  # the parent as it was when the child began
    train_video(tmp_path / "scratch", steps=1, every=1, **TINY)
    with pytest.raises(UsageError, match="started from scratch"):
        train_video(tmp_path / "scratch", steps=2, every=1, resume=True, init=parent.path, **TINY)


def test_init_refuses_other_clip_sizes_and_unknown_models(tmp_path, tiny):
    with pytest.raises(UsageError, match="32x32 clips.*16x16.*set size"):
        train_video(tmp_path / "small", steps=1, size=16, init=tiny.path, **TINY)
    with pytest.raises(UsageError, match="nope"):
        train_video(tmp_path / "none", steps=1, init="nope", **TINY)
    assert not (tmp_path / "small").exists() and not (tmp_path / "none").exists()


def test_fill_keeps_the_given_frames_exactly(tiny):
    clip = moving_clips(1, frames=6, seed=0).clips[0]
    filled = tiny.fill(clip, range(2, 4), steps=3, strength=1.0)  # from noise: the blend start has its own test
    keep = [0, 1, 4, 5]
    assert filled.shape == clip.shape
    assert np.array_equal(filled[keep], clip[keep])
    assert not np.array_equal(filled[2:4], clip[2:4])
    guided = tiny.fill(clip, range(2, 4), steps=3, strength=1.0, recon=30.0, resample=1)
    assert np.array_equal(guided[keep], clip[keep]) and not np.array_equal(guided, filled)
    with pytest.raises(UsageError, match="recon"):
        tiny.fill(clip, range(2, 4), recon=float("nan"))


def test_fill_from_the_blend_keeps_given_frames_and_moves_toward_the_blend(tiny):
    clip = moving_clips(2, frames=4, seed=1).clips
    blend = np.stack([blend_frames(c, [1, 2]) for c in clip])
    assert np.array_equal(blend[:, [0, 3]], clip[:, [0, 3]])
    first, last = clip[0, 0].astype(float), clip[0, 3].astype(float)
    assert np.abs(blend[0, 1] - (first * 2 / 3 + last / 3)).max() <= 0.5 + 1e-9
    gap = lambda out: np.abs(out[:, 1:3].astype(float) - blend[:, 1:3]).mean()  # noqa: E731
    full = tiny.fill(clip, [1, 2], steps=10, strength=1.0, seed=0)
    near = tiny.fill(clip, [1, 2], steps=10, strength=0.2, seed=0)
    assert np.array_equal(near[:, [0, 3]], clip[:, [0, 3]])
    assert gap(near) < gap(full) / 2  # a nearly untrained model: only a weak strength keeps the blend
    with pytest.raises(UsageError, match="strength must be in"):
        tiny.fill(clip, [1], strength=0)


@pytest.mark.parametrize("missing, message", [(range(5, 8), "outside the clip"), ([], "no frame to fill"),
                                              (range(6), "every frame is missing")])
def test_fill_refuses_impossible_ranges(tiny, missing, message):
    clip = moving_clips(1, frames=6, seed=0).clips[0]
    with pytest.raises(UsageError, match=message):
        tiny.fill(clip, missing, steps=2)


def test_extend_continues_after_the_clip(tiny):
    clip = moving_clips(1, frames=4, seed=0).clips[0]
    longer = tiny.extend(clip, 5, steps=2)
    assert longer.shape == (9, 32, 32, 1)
    assert np.array_equal(longer[:4], clip)


def test_denoise_shapes_per_frame_and_zero_noise(tiny):
    clip = moving_clips(1, frames=4, seed=0).clips[0]
    noisy = np.clip(clip + np.random.default_rng(0).normal(0, 25, clip.shape), 0, 255).astype(np.uint8)
    joint, alone = tiny.denoise(noisy), tiny.denoise(noisy, per_frame=True)
    assert joint.shape == alone.shape == clip.shape
    assert np.array_equal(tiny.denoise(clip, 0.0), clip)
    with pytest.raises(UsageError, match="sigma"):
        tiny.denoise(noisy, -1.0)


@pytest.mark.parametrize("clip, message", [(np.zeros((4, 28, 28, 1), np.uint8), "28x28"),
                                           (np.zeros((4, 32, 32, 1), np.float32), "uint8")])
def test_clips_of_the_wrong_shape_or_type_are_refused(tiny, clip, message):
    with pytest.raises(UsageError, match=message):
        tiny.denoise(clip)


def test_the_sampler_is_a_choice_and_keeps_the_seed(tiny):
    """ddpm adds fresh noise at every step: another clip than the default, the same one again with the seed."""
    plain = tiny.generate("a bag moving up", frames=4, steps=3, seed=1)
    fresh = tiny.generate("a bag moving up", frames=4, steps=3, seed=1, sampler="ddpm")
    assert not np.array_equal(plain, fresh)
    assert np.array_equal(fresh, tiny.generate("a bag moving up", frames=4, steps=3, seed=1, sampler="ddpm"))
    for bad in ("adaptive", "consistency", "nope"):
        with pytest.raises(UsageError, match="sampler must be one of euler, heun, dpmpp-2m"):
            tiny.generate("a bag", frames=2, steps=2, sampler=bad)


def test_generate_refuses_bad_counts(tiny):
    with pytest.raises(UsageError, match="frames"):
        tiny.generate("a bag", frames=0)
    with pytest.raises(UsageError, match="at most"):
        tiny.generate("a bag", frames=500)


def test_an_image_model_is_not_a_video_model(tmp_path):
    ckpt.save_model(tmp_path / "img", {"kind": "table"}, {"x": torch.zeros(1)})
    with pytest.raises(UsageError, match="not a video model"):
        VideoGenerator.load(tmp_path / "img")
