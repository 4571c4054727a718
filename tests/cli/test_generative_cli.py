"""CLI smoke tests with the shipped model, and one-line errors with nothing overwritten."""

import numpy as np
import pytest
from PIL import Image

from diffusio.cli.main import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow  # 25-160 s on the shared cores (make test-fast leaves it out)
def test_generate_png_and_npy_agree_with_the_python_api(tmp_path, capsys, shipped):
    code, out, _ = run(capsys, "generate", "a leather ankle boot", "-n", "4", "--steps", "6", "--seed", "3",
                       "-o", str(tmp_path / "boots.npy"))
    assert code == 0 and "wrote 4 images" in out
    arr = np.load(tmp_path / "boots.npy", allow_pickle=False)
    assert arr.shape == (4, 28, 28) and arr.dtype == np.uint8
    api = shipped.generate("a leather ankle boot", n=4, steps=6, seed=3)
    assert np.array_equal(arr, api)
    code, _, _ = run(capsys, "generate", "a leather ankle boot", "-n", "4", "--steps", "6", "--seed", "3",
                     "-o", str(tmp_path / "boots.png"))
    assert code == 0 and Image.open(tmp_path / "boots.png").size == (2 + 2 * 30, 2 + 2 * 30)


@pytest.mark.slow  # 25-160 s on the shared cores (make test-fast leaves it out)
def test_same_seed_same_bytes(tmp_path, capsys):
    for name in ("a.npy", "b.npy"):
        assert run(capsys, "generate", "jeans", "-n", "2", "--steps", "4", "--sampler", "ddpm", "-o",
                   str(tmp_path / name))[0] == 0
    assert (tmp_path / "a.npy").read_bytes() == (tmp_path / "b.npy").read_bytes()


def test_generate_bf16_matches_the_python_api(tmp_path, capsys, shipped):
    """--bf16 on reaches Generator.sample; the same seed gives the same bytes as the API's bf16='on'."""
    code, out, _ = run(capsys, "generate", "a bag", "-n", "2", "--steps", "4", "--seed", "1", "--bf16", "on",
                       "-o", str(tmp_path / "bags.npy"))
    assert code == 0 and "wrote 2 images" in out
    assert np.array_equal(np.load(tmp_path / "bags.npy"), shipped.generate("a bag", n=2, steps=4, seed=1, bf16="on"))


@pytest.mark.slow  # 25-160 s on the shared cores (make test-fast leaves it out)
def test_label_and_unconditional(tmp_path, capsys):
    assert run(capsys, "generate", "--label", "Bag", "-n", "2", "--steps", "4", "-o", str(tmp_path / "l.npy"))[0] == 0
    assert run(capsys, "generate", "--label", "8", "-n", "2", "--steps", "4", "-o", str(tmp_path / "i.npy"))[0] == 0
    assert np.array_equal(np.load(tmp_path / "l.npy"), np.load(tmp_path / "i.npy"))
    assert run(capsys, "generate", "-n", "2", "--steps", "4", "-o", str(tmp_path / "u.npy"))[0] == 0


@pytest.mark.parametrize("argv,message", [
    (["generate", ""], "empty prompt"),
    (["generate", "x", "--steps", "0"], "--steps must be >= 1"),
    (["generate", "x", "-n", "0"], "-n must be >= 1"),
    (["generate", "x", "--guidance", "-1"], "--guidance must be in [0, 100]"),
    (["generate", "--label", "Hat"], "unknown label 'Hat'"),
    (["generate", "x", "--model", "no-such-model"], "no model 'no-such-model'"),
    (["generate", "x", "-o", "/no/such/dir/x.png"], "does not exist"),
    (["generate", "x", "-o", "out.txt"], "use .png or .npy"),
    (["train", "--data", "imagenet", "--out", "OUT"], "unknown dataset 'imagenet'"),
])
def test_bad_input_is_one_line_error(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse rejects bad numbers before we run
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and message in err
    assert not any(tmp_path.iterdir())  # nothing written


def test_failed_run_does_not_overwrite_existing_output(tmp_path, capsys):
    target = tmp_path / "keep.png"
    target.write_bytes(b"precious")
    code = main(["generate", "", "-o", str(target)])
    assert code == 2 and target.read_bytes() == b"precious"


@pytest.mark.slow  # 25-160 s on the shared cores (make test-fast leaves it out)
def test_demo_and_samplers(tmp_path, capsys):
    code, out, _ = run(capsys, "demo", "--prompt", "a sneaker", "--prompt", "a bag", "-n", "2",
                       "-o", str(tmp_path / "demo.png"))
    assert code == 0 and str(tmp_path / "demo.png") in out
    assert Image.open(tmp_path / "demo.png").size[1] == 2 * (2 * (28 + 4))
    code, out, _ = run(capsys, "watermark", "detect", str(tmp_path / "demo.png"))  # the demo's picture reads back
    assert code == 0 and "4 of 4 images carry the watermark" in out
    code, out, _ = run(capsys, "samplers")
    assert code == 0 and "dpmpp-2m" in out and "karras" in out


@pytest.mark.slow  # 25-160 s on the shared cores (make test-fast leaves it out)
def test_early_stop_and_adaptive_report_their_nfe(tmp_path, capsys):
    code, out, _ = run(capsys, "generate", "a bag", "-n", "2", "--steps", "30", "--early-stop", "0.05",
                       "-o", str(tmp_path / "e.npy"))
    assert code == 0
    nfe = float(out.split("(")[-1].split()[0])
    assert nfe < 30  # stopped early
    code, out, _ = run(capsys, "generate", "a bag", "-n", "2", "--sampler", "adaptive", "--tol", "0.2",
                       "-o", str(tmp_path / "a.npy"))
    assert code == 0 and "network evaluations" in out
    code, _, _ = run(capsys, "generate", "a bag", "-n", "2", "--sampler", "unipc", "--steps", "5",
                     "-o", str(tmp_path / "u.npy"))
    assert code == 0


@pytest.mark.parametrize("argv,message", [
    (["--sampler", "ddpm", "--early-stop", "0.01"], "does not apply to the ddpm sampler"),
    (["--tol", "0.1"], "add --sampler adaptive"),
    (["--sampler", "adaptive", "--tol", "2"], "--tol must be in (0, 1)"),
    (["--schedule", "distilled"], "not a distilled student"),
])
def test_invalid_sampler_combinations(tmp_path, capsys, argv, message):
    code, _, err = run(capsys, "generate", "a bag", "-n", "1", "-o", str(tmp_path / "x.png"), *argv)
    assert code == 2 and message in err
    assert not (tmp_path / "x.png").exists()


def test_version(capsys):
    import diffusio
    from diffusio.cli.main import main

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"diffusio {diffusio.__version__}"
