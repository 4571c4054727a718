"""Cheap generation: distilled students (1/2/4 steps), ONNX export that matches torch, int8 quantisation."""

import json
import os

import numpy as np
import pytest
import torch

from diffusio.cli.main import main
from diffusio.errors import UsageError
from diffusio.generative import Generator
from diffusio.generative.cheap.distill import DistillConfig, Distiller, consistency_loss, distill
from diffusio.generative.checkpoint.models import load_model
from diffusio.generative.core.samplers import sample_consistency
from diffusio.generative.training.trainer import TrainConfig, train

TINY = dict(data="digits", batch_size=32, base=8, mults=(1, 2), attn_levels=(1,), cond="class",
            every=0, quiet=True, lr=2e-3, warmup=10)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return train(TrainConfig(out=str(tmp_path_factory.mktemp("t") / "teacher"), steps=30, **TINY))


def tiny_distill(teacher, out, **kw):
    cfg = dict(teacher=str(teacher), out=str(out), trajectories=24, teacher_steps=4, train_steps=3,
               batch_size=16, every=0, quiet=True)
    return DistillConfig(**{**cfg, **kw})


def test_consistency_sampling_with_the_exact_consistency_function():
    # for data ~ N(0, 0.5^2) the probability-flow ODE maps x at sigma to x * 0.5 / sqrt(0.25 + sigma^2)
    f = lambda x, sigma, cond=None: x * 0.5 / (0.25 + sigma[:, None, None, None] ** 2) ** 0.5
    g = torch.Generator().manual_seed(0)
    for sigmas in ([80.0, 0.0], [80.0, 2.0, 0.3, 0.0]):
        x = torch.randn(20000, 1, 1, 1, generator=g) * 80
        out = sample_consistency(f, x, torch.tensor(sigmas), generator=g)
        assert abs(float(out.std()) - 0.5) < 0.01


@pytest.mark.slow
def test_student_samples_in_1_2_4_steps_and_resumes(teacher, tmp_path):
    out = distill(tiny_distill(teacher, tmp_path / "s"))
    student = Generator.load(out)
    assert student.defaults["sampler"] == "consistency" and student.defaults["guidance"] == 1.0
    for steps in (1, 2, 4):
        made = student.sample(label=3, n=2, steps=steps, seed=0)
        assert made.uint8().shape == (2, 8, 8) and made.nfe == steps
    assert np.array_equal(student.generate(label=3, n=2, steps=2, seed=1),
                          student.generate(label=3, n=2, steps=2, seed=1))
    with pytest.raises(UsageError, match="no distilled schedule for 3 steps"):
        student.generate(label=3, n=1, steps=3)
    chunk = out / "trajectories" / "chunk0000.safetensors"
    stamp = os.stat(chunk).st_mtime_ns
    distill(tiny_distill(teacher, tmp_path / "s", train_steps=5), resume=True)
    assert json.loads((out / "train_state.json").read_text())["step"] == 5
    assert os.stat(chunk).st_mtime_ns == stamp  # teacher trajectories are reused, not regenerated
    with pytest.raises(UsageError, match="already holds a distillation"):
        distill(tiny_distill(teacher, tmp_path / "s"))
    with pytest.raises(UsageError, match="other trajectories"):
        distill(tiny_distill(teacher, tmp_path / "s", trajectories=48), resume=True)


@pytest.mark.slow
def test_distillation_lowers_the_consistency_loss(teacher, tmp_path):
    distiller = Distiller(tiny_distill(teacher, tmp_path / "s", train_steps=60, lr=2e-3))
    states, conds = distiller.trajectories()
    i = torch.arange(len(states)) % (len(distiller.sigmas) - 1)

    def loss():
        with torch.no_grad():
            return float(consistency_loss(distiller.student, states[torch.arange(len(states)), i].float(),
                                          distiller.sigmas[i], states[:, -1].float(), conds))

    before = loss()
    for _ in range(60):
        distiller.train_step(states, conds)
    assert loss() < 0.8 * before


@pytest.mark.slow  # 25-160 s on the shared cores (make test-fast leaves it out)
def test_distill_rejects_a_vp_teacher_and_bad_arguments(tmp_path):
    vp = train(TrainConfig(out=str(tmp_path / "vp"), steps=1, precond="vp", **TINY))
    with pytest.raises(UsageError, match="EDM-preconditioned teacher"):
        Distiller(tiny_distill(vp, tmp_path / "s"))
    assert not (tmp_path / "s").exists()
    with pytest.raises(UsageError, match="teacher-steps"):
        Distiller(tiny_distill(vp, tmp_path / "s", teacher_steps=2))


@pytest.mark.slow
def test_onnx_matches_torch_on_the_shipped_model(tmp_path):
    from diffusio.generative.cheap.export import OnnxDenoiser, example_inputs, export_onnx

    model = load_model("fashion")
    path = export_onnx(model, tmp_path / "fashion.onnx")
    onnx = OnnxDenoiser(path)
    x, sigma, cond = example_inputs(model, n=5, seed=1)  # another batch size than the export's
    with torch.no_grad():
        for c in (cond, None):
            assert float((onnx(x, sigma, c) - model.denoiser(x, sigma, c)).abs().max()) <= 1e-4


@pytest.mark.slow
def test_export_int8_and_generate_with_onnxruntime(teacher, tmp_path, capsys):
    path = tmp_path / "tiny-int8.onnx"
    assert main(["export", str(teacher), "-o", str(path), "--int8", "--calibration-batches", "2"]) == 0
    out = capsys.readouterr().out
    assert '"Conv"' in out.split("operators on int8:")[1].split("\n")[0]
    torch_images = Generator.load(teacher).generate(label=1, n=3, steps=8, seed=0).astype(int)
    int8 = Generator.load(teacher, onnx=path)
    assert int8.backend == "onnxruntime"
    int8_images = int8.generate(label=1, n=3, steps=8, seed=0).astype(int)
    assert np.abs(int8_images - torch_images).mean() < 40  # same images, up to quantisation error

    float_path = tmp_path / "tiny.onnx"
    assert main(["export", str(teacher), "-o", str(float_path)]) == 0
    assert main(["generate", "--model", str(teacher), "--label", "1", "-n", "3", "--steps", "8",
                 "--onnx", str(float_path), "-o", str(tmp_path / "x.npy")]) == 0
    assert np.abs(np.load(tmp_path / "x.npy").astype(int) - torch_images).max() <= 1


@pytest.mark.slow
def test_export_and_backend_errors(teacher, tmp_path, capsys):
    assert main(["export", str(teacher), "--format", "tflite", "-o", str(tmp_path / "x.onnx")]) == 2
    assert "unknown export format" in capsys.readouterr().err
    assert main(["export", str(teacher), "-o", str(tmp_path / "x.pb")]) == 2
    assert main(["generate", "--onnx", str(tmp_path / "missing.onnx"), "-o", str(tmp_path / "y.png")]) == 2
    assert "no ONNX file" in capsys.readouterr().err
    tiny = tmp_path / "tiny.onnx"
    assert main(["export", str(teacher), "-o", str(tiny)]) == 0
    assert main(["generate", "a bag", "--onnx", str(tiny), "-o", str(tmp_path / "y.png")]) == 2
    assert "exported from another model" in capsys.readouterr().err
    assert not (tmp_path / "y.png").exists()


def test_missing_onnxruntime_is_a_clear_error(tmp_path, monkeypatch):
    from diffusio.generative.cheap.export import OnnxDenoiser

    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)  # as if not installed
    with pytest.raises(UsageError, match=r"pip install 'diffusio\[onnx\]'"):
        OnnxDenoiser(tmp_path / "x.onnx")


def test_teacher_trajectories_are_guided_only_where_the_teacher_guides(tmp_path):
    from diffusio.generative.cheap.distill import condition_bank, teacher_sigmas, teacher_trajectories
    from diffusio.generative.core.sampling import sample

    teacher = load_model("fashion")
    interval = tuple(teacher.config["sampling"]["guidance_interval"])
    sigmas = teacher_sigmas(teacher.denoiser, 4)
    cond = condition_bank(teacher)[:2]
    inside = teacher_trajectories(teacher, 2, cond, sigmas, 3.5, 0, interval)
    everywhere = teacher_trajectories(teacher, 2, cond, sigmas, 3.5, 0)
    direct = sample(teacher.denoiser, 2, teacher.config["image"], cond=cond, sampler="dpmpp-2m", guidance=3.5,
                    seed=0, sigmas=sigmas, clamp=False, guidance_interval=interval)
    assert torch.allclose(inside[:, -1], direct)
    assert not torch.allclose(inside[:, -1], everywhere[:, -1], atol=1e-3)
    run = Distiller(tiny_distill("fashion", tmp_path / "student"))
    assert run.guidance_interval == interval
    assert run.student_config()["distillation"]["guidance_interval"] == interval


def test_an_autoguided_teacher_is_distilled_as_it_samples(tmp_path):
    """A teacher whose config autoguides hands the guide to its trajectories, and the student's
    config records it."""
    import shutil

    from diffusio.generative.cheap.distill import DistillConfig, Distiller
    from diffusio.generative.checkpoint.models import load_model, resolve_model_dir

    teacher = tmp_path / "teacher"
    shutil.copytree(resolve_model_dir("fashion"), teacher)
    config = json.loads((teacher / "config.json").read_text())
    config["sampling"].update(autoguidance=2.0, guide="fashion-guide", redraw_below={"Shirt": 0.3}, nudges=[2.0, 4.0])
    (teacher / "config.json").write_text(json.dumps(config))
    run = Distiller(DistillConfig(teacher=str(teacher), out=str(tmp_path / "student"), trajectories=2,
                                  teacher_steps=4, train_steps=1, quiet=True))
    guide, scale, interval = run.autoguide
    assert scale == 2.0 and torch.equal(next(iter(guide.state_dict().values())),
                                        next(iter(load_model("fashion-guide").denoiser.state_dict().values())))
    assert interval == (0.0, 4.0)  # fashion's own: its trajectories autoguide only at sigma <= 4, as it samples
    assert run.student_config()["distillation"]["autoguidance"] == {"scale": 2.0, "guide": "fashion-guide",
                                                                    "interval": (0.0, 4.0)}
    assert run.student_config()["sampling"]["redraw_below"] == {"Shirt": 0.3}  # redrawn by the teacher's bars
    assert "nudges" not in run.student_config()["sampling"]  # but from new noise: nudges cost a student FD
    # fashion synthesises with autoguidance from its guide: a recipe of the teacher, not of a student
    assert "synthesis" in config and "synthesis" not in run.student_config()


def test_a_student_gets_its_teachers_class_guide_and_redraws(tmp_path):
    from types import SimpleNamespace

    from diffusio.generative import Generator
    from diffusio.generative.cheap.distill import copy_class_guide
    from diffusio.generative.checkpoint.models import resolve_model_dir

    teacher_dir = resolve_model_dir("fashion")
    teacher = SimpleNamespace(path=teacher_dir, config={"class_guide": {"file": "class_guide.safetensors"}})
    copy_class_guide(teacher, tmp_path)
    assert (tmp_path / "class_guide.safetensors").read_bytes() == (teacher_dir / "class_guide.safetensors").read_bytes()
    copy_class_guide(SimpleNamespace(path=teacher_dir, config={}), tmp_path / "none")  # no guide: nothing to copy
    assert not (tmp_path / "none").exists()
    student = Generator.load("fashion-fast")  # the shipped student redraws as its teacher does
    assert student.defaults["redraws"] == Generator.load("fashion").defaults["redraws"] == 5
    assert student.defaults["redraw_below"] == Generator.load("fashion").defaults["redraw_below"] == {"Shirt": 0.3}
    assert Generator.load("fashion").defaults["nudges"] == [1.0, 2.0, 4.0] and "nudges" not in student.defaults
    from diffusio.generative.conditioning.class_guide import NAMED_AT, load_class_guide

    guide = load_class_guide(student.model.path, student.model.config)
    wishes = guide.wishes(student.condition(16, "a T-shirt", None, None))
    plain, redrawn = (student.sample("a T-shirt", n=16, steps=4, seed=0, redraws=r) for r in (0, 5))
    named = [int((guide.named(s.images, wishes) >= NAMED_AT).sum()) for s in (plain, redrawn)]
    assert named[1] > named[0] or named[0] == 16
    assert redrawn.nfe > plain.nfe or named[0] == 16   # the missed images were drawn again
