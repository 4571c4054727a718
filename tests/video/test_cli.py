"""``diffusio video`` round trips GIF and MP4 through a tiny model; bad requests write nothing."""

import json

import numpy as np
import pytest

from diffusio.cli.main import main
from diffusio.video.clips import moving_clips
from diffusio.video.io import read_video, write_video
from diffusio.video.training import train_video

pytestmark = pytest.mark.slow  # real models and files: left out of `make test-fast`


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    train_video(out, steps=2, every=2, frames=4, batch_size=2, base=8, mults=(1, 2), quiet=True, bf16="off")
    return str(out)


@pytest.fixture
def clip_file(tmp_path):
    return write_video(moving_clips(1, frames=6, seed=0).clips[0], tmp_path / "clip.gif")


def test_generate_writes_gif_mp4_and_a_strip(model, tmp_path, capsys):
    gif, strip = tmp_path / "a.gif", tmp_path / "a.png"
    assert main(["video", "generate", "a coat moving up", "--model", model, "--frames", "5", "--steps", "2",
                 "-o", str(gif), "--strip", str(strip)]) == 0
    assert read_video(gif).shape == (5, 128, 128, 1)  # --scale 4 by default
    assert read_video(strip).shape[0] == 5
    mp4 = tmp_path / "a.mp4"
    assert main(["video", "generate", "a coat", "--model", model, "--frames", "4", "--steps", "2", "--scale", "1",
                 "-n", "2", "-o", str(mp4)]) == 0
    assert read_video(mp4).shape[:3] == (4, 32, 65)  # two clips side by side with a 1-pixel gap
    assert "wrote 2 clip(s)" in capsys.readouterr().out
    fresh = tmp_path / "fresh.gif"
    assert main(["video", "generate", "a coat moving up", "--model", model, "--frames", "5", "--steps", "2",
                 "--sampler", "ddpm", "-o", str(fresh)]) == 0
    assert not np.array_equal(read_video(fresh), read_video(gif))


def test_fill_denoise_extend_round_trip(model, clip_file, tmp_path):
    filled = tmp_path / "filled.gif"
    assert main(["video", "fill", str(clip_file), "--frames", "3-4", "--model", model, "--steps", "2",
                 "-o", str(filled)]) == 0
    original, out = read_video(clip_file), read_video(filled)
    assert np.array_equal(out[[0, 1, 4, 5]], original[[0, 1, 4, 5]])
    clean = tmp_path / "clean.mp4"
    assert main(["video", "denoise", str(clip_file), "--model", model, "--sigma", "0.2", "-o", str(clean)]) == 0
    assert read_video(clean).shape == original.shape
    longer = tmp_path / "longer.gif"
    assert main(["video", "extend", str(clip_file), "--frames", "3", "--model", model, "--steps", "2",
                 "-o", str(longer)]) == 0
    assert read_video(longer).shape[0] == 9


def test_denoise_says_the_noise_level_it_estimated(model, clip_file, tmp_path, capsys):
    from diffusio.video.editing import clip_noise_sigma

    clean = tmp_path / "clean.gif"
    assert main(["video", "denoise", str(clip_file), "--model", model, "-o", str(clean)]) == 0
    sigma = clip_noise_sigma(read_video(clip_file))
    assert f"noise sigma {sigma:.3f}, estimated" in capsys.readouterr().out
    assert main(["video", "denoise", str(clip_file), "--model", model, "--sigma", "0.1", "--force", "-o", str(clean)]) == 0
    assert "noise sigma 0.100, given" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["fill", "{clip}", "--frames", "5-9"], "outside the clip"),
    (["fill", "{clip}", "--frames", "x"], "frame numbers"),
    (["denoise", "{clip}", "-o", "{tmp}/out.avi"], "must end in"),
    (["denoise", "{tmp}/missing.gif"], "missing.gif"),
    (["denoise", "{bad}"], "bad.gif"),
    (["denoise", "{big}"], "the model works on 32x32"),
])
def test_bad_requests_fail_cleanly_and_write_nothing(model, clip_file, tmp_path, capsys, args, message):
    (tmp_path / "bad.gif").write_bytes(b"GIF89a not really")
    write_video(np.zeros((3, 40, 40, 1), np.uint8), tmp_path / "big.gif")
    before = sorted(p.name for p in tmp_path.iterdir())
    words = [a.format(clip=clip_file, tmp=tmp_path, bad=tmp_path / "bad.gif", big=tmp_path / "big.gif") for a in args]
    if "-o" not in words:
        words += ["-o", str(tmp_path / "out.gif")]
    assert main(["video", words[0], *words[1:], "--model", model]) == 2
    assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_writing_over_the_input_needs_force(model, clip_file, capsys):
    assert main(["video", "denoise", str(clip_file), "--model", model, "-o", str(clip_file)]) == 2
    assert "--force" in capsys.readouterr().err


def test_train_continues_a_model_with_init(model, tmp_path, capsys):
    out = tmp_path / "child"
    assert main(["video", "train", "--out", str(out), "--init", model, "--frames", "4", "--batch-size", "2",
                 "--steps", "1", "--every", "1", "--bf16", "off", "--noise-shift", "1.4", "--quiet"]) == 0
    assert f"on top of {model}'s 2 steps" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["settings"]["noise_shift"] == 1.4
    with pytest.raises(SystemExit) as bad:  # argparse: exit 2 with the range named
        main(["video", "train", "--out", str(tmp_path / "shifted"), "--noise-shift", "5"])
    assert bad.value.code == 2
    assert "--noise-shift must be in [0, 4], got 5.0" in capsys.readouterr().err
    assert not (tmp_path / "shifted").exists()
    assert main(["video", "train", "--out", str(tmp_path / "other"), "--init", model, "--base", "4"]) == 2
    assert "leave out --base" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()


def test_motion_guide_then_generate_with_and_without_it(tmp_path, capsys, monkeypatch):
    from diffusio.video import motion

    monkeypatch.setattr(motion, "SCORED", 60)
    run = tmp_path / "run"
    train_video(run, steps=1, every=1, frames=4, batch_size=2, base=8, mults=(1, 2), quiet=True, bf16="off")
    gif, off = tmp_path / "a.gif", tmp_path / "off.gif"
    assert main(["video", "generate", "a coat moving up", "--model", str(run), "--frames", "4", "--steps", "2",
                 "--motion-guidance", "3", "-o", str(gif)]) == 2
    assert "motion-guide" in capsys.readouterr().err and not gif.exists()
    assert main(["video", "generate", "a coat moving up", "--model", str(run), "--frames", "4", "--steps", "2",
                 "--redraws", "1", "--motion-check", "-o", str(gif)]) == 2
    assert "--motion-check needs a motion guide" in capsys.readouterr().err and not gif.exists()
    assert main(["video", "motion-guide", str(run), "--steps", "2", "--scale", "5", "--quiet"]) == 0
    assert "caption reader" in capsys.readouterr().out
    assert json.loads((run / "config.json").read_text())["motion_guide"]["scale"] == 5.0
    assert main(["video", "generate", "a coat moving up", "--model", str(run), "--frames", "4", "--steps", "2",
                 "-o", str(gif)]) == 0
    assert main(["video", "generate", "a coat moving up", "--model", str(run), "--frames", "4", "--steps", "2",
                 "--motion-guidance", "0", "-o", str(off)]) == 0
    assert not np.array_equal(read_video(gif), read_video(off))
    checked = tmp_path / "checked.gif"
    assert main(["video", "generate", "a coat moving up", "--model", str(run), "--frames", "4", "--steps", "2",
                 "--redraws", "1", "--motion-check", "-o", str(checked)]) == 0   # the run has no garment check
    assert main(["video", "generate", "a coat moving up", "--model", str(run), "--frames", "4", "--steps", "2",
                 "--redraws", "1", "--no-motion-check", "-o", str(tmp_path / "x.gif")]) == 2
    assert "needs a garment check" in capsys.readouterr().err
    assert main(["video", "motion-guide", str(tmp_path / "none")]) == 2


def test_garment_guide_then_generate_with_and_without_it(tmp_path, capsys, monkeypatch):
    from diffusio.video import garment_guide

    monkeypatch.setattr(garment_guide, "SCORED", 20)
    monkeypatch.setattr(garment_guide, "STILLS", 256)
    run = tmp_path / "run"
    train_video(run, steps=1, every=1, frames=4, batch_size=2, base=8, mults=(1, 2), quiet=True, bf16="off")
    gif, off = tmp_path / "a.gif", tmp_path / "off.gif"
    assert main(["video", "generate", "a coat moving up", "--model", str(run), "--frames", "4", "--steps", "2",
                 "--garment-guidance", "3", "-o", str(gif)]) == 2
    assert "garment-guide" in capsys.readouterr().err and not gif.exists()
    assert main(["video", "garment-guide", str(run), "--steps", "2", "--scale", "5", "--quiet"]) == 0
    assert "caption reader" in capsys.readouterr().out
    assert json.loads((run / "config.json").read_text())["garment_guide"]["scale"] == 5.0
    assert main(["video", "generate", "a coat moving up", "--model", str(run), "--frames", "4", "--steps", "2",
                 "-o", str(gif)]) == 0
    assert main(["video", "generate", "a coat moving up", "--model", str(run), "--frames", "4", "--steps", "2",
                 "--garment-guidance", "0", "-o", str(off)]) == 0
    assert not np.array_equal(read_video(gif), read_video(off))
    assert main(["video", "garment-guide", str(tmp_path / "none")]) == 2
