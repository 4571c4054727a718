"""diffusio.video.io: clip files round trip, every refusal is a UsageError that writes nothing."""

import io
import stat
import subprocess
import warnings

import numpy as np
import pytest
from PIL import Image

from diffusio.errors import UsageError
from diffusio.video import io as vio
from diffusio.video.folder import load_clip_folder
from diffusio.video.io import (read_video, resize_clip, to_channels, write_video,
                               VIDEO_SUFFIXES)


def moving_square(frames=8, height=32, width=32, rgb=False):
    """A soft-edged bright square sliding diagonally: smooth enough for H.264 to keep."""
    y, x = np.mgrid[:height, :width].astype(float)
    out = []
    for t in range(frames):
        cy, cx = 8 + 1.5 * t, 6 + 2 * t
        inside = np.clip(5 - np.maximum(abs(y - cy), abs(x - cx)), 0, 3) / 3  # 0 outside, ramps to 1
        out.append(30 + 200 * inside)
    grey = np.stack(out).round().astype(np.uint8)
    return np.stack([grey, 255 - grey, grey // 2 + 60], axis=-1) if rgb else grey[..., None]


def names(folder):
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------------------- round trips

def test_gif_grey_round_trip_is_exact_even_with_repeated_frames(tmp_path):
    clip = np.repeat(moving_square(4), [1, 3, 1, 2], axis=0)  # Pillow merges identical neighbours
    assert write_video(clip, tmp_path / "a.gif", fps=5) == tmp_path / "a.gif"
    back = read_video(tmp_path / "a.gif")
    assert back.dtype == np.uint8 and back.shape == (7, 32, 32, 1)
    np.testing.assert_array_equal(back, clip)
    assert names(tmp_path) == ["a.gif"]


def test_gif_of_identical_frames_keeps_its_length(tmp_path):
    clip = np.repeat(moving_square(1), 12, axis=0)
    np.testing.assert_array_equal(read_video(write_video(clip, tmp_path / "still.gif", fps=1)), clip)


def test_gif_rgb_round_trip(tmp_path):
    clip = moving_square(6, rgb=True)
    back = read_video(write_video(clip, tmp_path / "c.gif"))
    assert back.shape == (6, 32, 32, 3)
    assert np.abs(back.astype(int) - clip).mean() < 4  # at most 256 colours per frame


@pytest.mark.parametrize("rgb", [False, True])
def test_mp4_round_trip_is_close(tmp_path, rgb):
    clip = moving_square(8, rgb=rgb)
    back = read_video(write_video(clip, tmp_path / "a.mp4", fps=8))
    assert back.shape == clip.shape  # grey comes back with one channel
    assert np.abs(back.astype(int) - clip).mean() < 8


def test_mp4_odd_size_reads_back_at_that_size(tmp_path):
    clip = moving_square(5, height=33, width=31, rgb=True)
    back = read_video(write_video(clip, tmp_path / "odd.mp4"))
    assert back.shape == (5, 33, 31, 3)
    assert np.abs(back.astype(int) - clip).mean() < 8


def test_mp4_scale_and_awkward_name(tmp_path):
    clip = moving_square(3, height=9, width=7)[..., 0]  # (T, H, W) is accepted too
    back = read_video(write_video(clip, tmp_path / "-x y.mp4", scale=3))  # "-" must not read as an option
    assert back.shape == (3, 27, 21, 1)


@pytest.mark.parametrize("rgb", [False, True])
def test_png_strip_round_trip_is_exact(tmp_path, rgb):
    clip = moving_square(5, height=16, width=16, rgb=rgb)
    write_video(clip, tmp_path / "s.png", scale=2)
    with Image.open(tmp_path / "s.png") as img:
        assert img.size == (5 * 32, 32)  # frames side by side, no padding
    np.testing.assert_array_equal(read_video(tmp_path / "s.png"), clip.repeat(2, 1).repeat(2, 2))


def test_alpha_is_dropped_and_grey_is_detected(tmp_path):
    rgba = np.zeros((8, 16, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 100
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    assert read_video(tmp_path / "rgba.png").shape == (2, 8, 8, 3)
    grey_rgb = np.repeat(moving_square(3), 3, axis=-1)
    assert read_video(write_video(grey_rgb, tmp_path / "g.gif")).shape == (3, 32, 32, 1)


# ---------------------------------------------------------------------------- reading refusals

def gif_with_two_sizes(path):
    """A GIF whose second frame (48x40) is larger than its first (32x32): Pillow will not write one."""
    def single(value, w, h):
        buf = io.BytesIO()
        Image.fromarray(np.full((h, w), value, np.uint8)).save(buf, format="GIF")
        return buf.getvalue()

    a, b = single(10, 32, 32), single(200, 48, 40)
    table = 3 << ((b[10] & 7) + 1)  # b's global colour table, reused as a local one
    start = 13 + table
    assert b[10] & 0x80 and b[start] == 0x2C  # header, screen, table, then the image descriptor
    descriptor = b[start:start + 9] + bytes([0x80 | (b[10] & 7)])
    path.write_bytes(a[:-1] + descriptor + b[13:start] + b[start + 10:])


def audio_only_mp4(path):
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono",
                    "-t", "0.1", "-c:a", "aac", str(path)], check=True, capture_output=True)


def test_read_refusals_name_the_file_the_problem_and_the_fix(tmp_path):
    (tmp_path / "folder.mp4").mkdir()
    (tmp_path / "junk.gif").write_bytes(b"GIF89a not really")
    (tmp_path / "junk.mp4").write_bytes(np.random.default_rng(0).bytes(3000))
    (tmp_path / "clip.txt").write_text("hi")
    gif_with_two_sizes(tmp_path / "sizes.gif")
    audio_only_mp4(tmp_path / "audio.mp4")
    cases = {
        "missing.mp4": r"no such video file: .*missing\.mp4; check the path",
        "folder.mp4": r"folder\.mp4 is a folder, not a video; give one video file",
        "clip.txt": r"clip\.txt: unknown video type '\.txt'; give a file ending in \.gif, \.png, \.mp4",
        "junk.gif": r"cannot read .*junk\.gif.*re-export it",
        "junk.mp4": r"cannot read .*junk\.mp4 as a video \(ffmpeg: .+\); re-export it",
        "sizes.gif": r"sizes\.gif: frame 1 is 48x40 pixels but frame 0 is 32x32; .*re-export it at one size",
        "audio.mp4": r"audio\.mp4 holds no video stream \(no frames\)",
    }
    for name, pattern in cases.items():
        with pytest.raises(UsageError, match=pattern):
            read_video(tmp_path / name)
    assert names(tmp_path) == sorted(set(cases) - {"missing.mp4"})  # reading writes nothing


def test_truncated_files_are_refused(tmp_path):
    whole = {s: write_video(moving_square(6), tmp_path / f"w{s}") for s in (".gif", ".mp4")}
    for suffix, path in whole.items():
        cut = tmp_path / f"cut{suffix}"
        cut.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
        with pytest.raises(UsageError, match=r"cannot read .*cut\..*re-export it"):
            read_video(cut)


@pytest.mark.parametrize("suffix", VIDEO_SUFFIXES)
def test_more_frames_than_max_frames_is_refused(tmp_path, suffix):
    path = write_video(moving_square(6, height=8, width=8), tmp_path / f"six{suffix}")
    assert read_video(path, max_frames=6).shape[0] == 6
    with pytest.raises(UsageError, match=r"six\..* has more than 5 frames, the most allowed.*trim it"):
        read_video(path, max_frames=5)
    with pytest.raises(UsageError, match="max_frames must be a whole number >= 1"):
        read_video(path, max_frames=0)


def test_png_strip_must_hold_square_frames(tmp_path):
    Image.fromarray(np.zeros((8, 20), np.uint8)).save(tmp_path / "wide.png")
    with pytest.raises(UsageError, match=r"20x8 pixels.*width must be a multiple of its height"):
        read_video(tmp_path / "wide.png")


# ---------------------------------------------------------------------------- writing refusals

@pytest.mark.parametrize("clip, kwargs, pattern", [
    (np.zeros((2, 8, 8), np.float64), {}, r"dtype float64; it needs uint8 .*\(clip \* 255\)"),
    (np.zeros((2, 8, 8, 2), np.uint8), {}, r"shape \(2, 8, 8, 2\); it needs \(T, H, W\) or \(T, H, W, C\)"),
    (np.zeros((8, 8), np.uint8), {}, r"shape \(8, 8\)"),
    (np.zeros((0, 8, 8), np.uint8), {}, r"shape \(0, 8, 8\).*T, H, W >= 1"),
    (np.zeros((2, 8, 8), np.uint8), {"fps": 0}, r"fps must be a number > 0; got 0"),
    (np.zeros((2, 8, 8), np.uint8), {"fps": float("nan")}, r"fps must be a number > 0"),
    (np.zeros((2, 8, 8), np.uint8), {"scale": 0}, r"scale must be a whole number >= 1; got 0"),
    (np.zeros((2, 8, 8), np.uint8), {"scale": 1.5}, r"scale must be a whole number >= 1; got 1\.5"),
])
@pytest.mark.parametrize("suffix", VIDEO_SUFFIXES)
def test_bad_clips_and_options_write_nothing(tmp_path, clip, kwargs, pattern, suffix):
    out = tmp_path / f"out{suffix}"
    out.write_bytes(b"keep")
    with pytest.raises(UsageError, match=pattern):
        write_video(clip, out, **kwargs)
    assert out.read_bytes() == b"keep" and names(tmp_path) == [out.name]


def test_output_checks_come_first(tmp_path):
    clip = moving_square(2, height=8, width=8)
    with pytest.raises(UsageError, match=r"out\.avi must end in \.gif or \.mp4 or \.png"):
        write_video(clip, tmp_path / "out.avi")
    with pytest.raises(UsageError, match="folder .* does not exist"):
        write_video(clip, tmp_path / "nowhere" / "out.gif")
    with pytest.raises(UsageError, match="a GIF cannot show more than 50 frames a second.*write .mp4"):
        write_video(clip, tmp_path / "fast.gif", fps=60)
    with pytest.raises(UsageError, match="a frame would show longer than 655 s; raise fps or write .mp4"):
        write_video(np.repeat(clip[:1], 40, axis=0), tmp_path / "slow.gif", fps=0.05)  # merged into one frame
    source = write_video(clip, tmp_path / "in.gif")
    before = source.read_bytes()
    with pytest.raises(UsageError, match="is also an input"):
        write_video(clip[::-1], source, inputs=(source,))
    assert source.read_bytes() == before
    write_video(clip[::-1], source, inputs=(source,), force=True)
    assert source.read_bytes() != before and names(tmp_path) == ["in.gif"]


def test_a_failing_encoder_leaves_the_old_file_and_no_temporary(tmp_path, tmp_path_factory, monkeypatch):
    fake = tmp_path_factory.mktemp("bin") / "ffmpeg"
    fake.write_text('#!/bin/sh\nfor last; do :; done\necho half > "${last#file:}"\n'
                    'echo "[libx264 @ 0x1] Error: disk full" >&2\nexit 1\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(vio, "_ffmpeg", lambda: str(fake))
    out = tmp_path / "out.mp4"
    out.write_bytes(b"keep")
    with pytest.raises(UsageError, match=r"cannot write .*out\.mp4: ffmpeg failed \(Error: disk full\)"):
        write_video(moving_square(2), out)
    assert out.read_bytes() == b"keep" and names(tmp_path) == ["out.mp4"]


# ---------------------------------------------------------------------------- channels and shapes

def test_to_channels():
    pixels = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [10, 20, 30]], np.uint8)
    clip = pixels.reshape(1, 1, 5, 3)
    grey = to_channels(clip, 1)
    assert grey.shape == (1, 1, 5, 1)
    assert grey.ravel().tolist() == [76, 150, 29, 255, 18]  # 601 luma, rounded
    np.testing.assert_array_equal(to_channels(grey, 3), np.repeat(grey, 3, axis=-1))
    np.testing.assert_array_equal(to_channels(clip, 3), clip)
    assert to_channels(np.zeros((2, 4, 4), np.uint8), 1).shape == (2, 4, 4, 1)
    with pytest.raises(UsageError, match="channels must be 1 .* or 3 .*; got 2"):
        to_channels(clip, 2)


def test_resize_clip():
    clip = np.arange(10, dtype=np.uint8)[:, None, None, None] * np.ones((1, 32, 32, 3), np.uint8)
    assert resize_clip(clip, 4, (16, 24)).shape == (4, 16, 24, 3)
    assert resize_clip(clip, 5, None)[:, 0, 0, 0].tolist() == [1, 3, 5, 7, 9]  # middle of each time slot
    assert resize_clip(clip[:2], 4, None)[:, 0, 0, 0].tolist() == [0, 0, 1, 1]  # stretching repeats
    assert resize_clip(clip, None, (8, 8)).shape == (10, 8, 8, 3)
    assert resize_clip(clip, None, None).shape == clip.shape
    assert resize_clip(np.zeros((3, 9, 9), np.uint8), 2, (4, 5)).shape == (2, 4, 5, 1)
    smooth = resize_clip(moving_square(2, 64, 64), None, (16, 16))
    assert 30 <= smooth.min() and smooth.max() <= 230  # interpolated, not wrapped
    with pytest.raises(UsageError, match="frames must be a whole number >= 1; got 0"):
        resize_clip(clip, 0, None)
    with pytest.raises(UsageError, match=r"size must be \(height, width\); got 16"):
        resize_clip(clip, None, 16)


# ---------------------------------------------------------------------------- folders

@pytest.fixture
def clip_folder(tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    write_video(moving_square(6, 16, 16), folder / "a.gif")
    write_video(moving_square(10, 20, 24, rgb=True), folder / "b.mp4")
    (folder / "notes.txt").write_text("not a clip")
    (folder / ".hidden.gif").write_bytes(b"junk")  # hidden files (half-written temporaries) are skipped
    return folder


def test_load_clip_folder_with_captions(tmp_path, clip_folder):
    csv = tmp_path / "captions.csv"
    csv.write_text("file,caption\nb.mp4,a red square\nclips/a.gif,\"a grey square, sliding\"\ngone.gif,ignored\n")
    clips, captions, files = load_clip_folder(clip_folder, frames=4, size=(8, 12), channels=3, captions=csv)
    assert clips.dtype == np.uint8 and clips.shape == (2, 4, 8, 12, 3)
    assert files == ["a.gif", "b.mp4"]
    assert captions == ["a grey square, sliding", "a red square"]
    grey, none, _ = load_clip_folder(clip_folder, frames=3, size=(16, 16), channels=1)
    assert grey.shape == (2, 3, 16, 16, 1) and none is None


def test_load_clip_folder_skips_unreadable_files_with_one_warning(clip_folder):
    (clip_folder / "bad.mp4").write_bytes(b"\x00" * 100)
    with pytest.warns(UserWarning, match=r"skipped 1 of 3 clips in .*; the first, bad\.mp4: cannot read"):
        clips, _, files = load_clip_folder(clip_folder, frames=2, size=(8, 8), channels=1)
    assert files == ["a.gif", "b.mp4"] and clips.shape == (2, 2, 8, 8, 1)


def test_load_clip_folder_refusals(tmp_path, clip_folder):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UsageError, match="empty holds no video clips .*add some"):
        load_clip_folder(empty, frames=2, size=(8, 8), channels=1)
    with pytest.raises(UsageError, match="no such folder: .*missing"):
        load_clip_folder(tmp_path / "missing", frames=2, size=(8, 8), channels=1)
    csv = tmp_path / "captions.csv"
    csv.write_text("file,caption\na.gif,one\n")
    with pytest.raises(UsageError, match=r"captions\.csv has no caption for b\.mp4; add a row file,caption"):
        load_clip_folder(clip_folder, frames=2, size=(8, 8), channels=1, captions=csv)
    csv.write_text("name,text\na.gif,one\n")
    with pytest.raises(UsageError, match="has the columns name, text; it needs file and caption"):
        load_clip_folder(clip_folder, frames=2, size=(8, 8), channels=1, captions=csv)
    with pytest.raises(UsageError, match="channels must be 1"):
        load_clip_folder(clip_folder, frames=2, size=(8, 8), channels=4)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.gif").write_bytes(b"nope")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # all unreadable: one error, not a warning too
        with pytest.raises(UsageError, match=r"none of the 1 clips in .*broken could be read; the first, x\.gif"):
            load_clip_folder(broken, frames=2, size=(8, 8), channels=1)
