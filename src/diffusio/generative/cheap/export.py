"""ONNX export and int8 quantisation of a denoiser, and an onnxruntime denoiser that samplers can drive.

The exported graph is the whole denoiser ``D(x, sigma, cond) -> x0_hat`` (network plus its
preconditioning), with a dynamic batch.  Guidance and the sampler loop stay in Python: they are a
few tensor operations per step, and keeping them out lets one ``.onnx`` file serve every sampler.

>>> path = export_onnx("fashion", "/tmp/fashion.onnx")          # doctest: +SKIP
>>> D = OnnxDenoiser(path)                                        # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from diffusio._io import atomic_path, atomic_save_json
from diffusio.errors import UsageError
from diffusio.generative.checkpoint.models import LoadedModel, load_model

FORMATS = ("onnx",)
OPSET = 18


def _require_onnxruntime():
    try:
        import onnxruntime
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise UsageError("onnxruntime is not installed; run: pip install 'diffusio[onnx]'") from err
    return onnxruntime


def example_inputs(model: LoadedModel, n: int = 2, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random inputs with the model's shapes: noisy images, their sigmas and (if conditioned) conditions."""
    g = torch.Generator().manual_seed(seed)
    c, h, w = model.image_shape
    sigma = torch.exp(torch.randn(n, generator=g) * 1.2 - 1.2)
    x = torch.randn((n, c, h, w), generator=g) * (1 + sigma[:, None, None, None])
    cond_dim = model.config.get("conditioning", {}).get("dim", 0)
    if cond_dim:
        return x, sigma, torch.randn((n, cond_dim), generator=g) / cond_dim ** 0.5
    return x, sigma


@contextlib.contextmanager
def _quiet():
    """The exporter and the quantiser log advice meant for their developers; keep the user's terminal clean."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "root", "")]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)


class _Exportable(torch.nn.Module):
    """The denoiser with a fixed argument list (ONNX has no optional inputs)."""

    def __init__(self, denoiser, conditioned: bool):
        super().__init__()
        self.denoiser, self.conditioned = denoiser, conditioned

    def forward(self, x, sigma, cond=None):
        return self.denoiser(x, sigma, cond if self.conditioned else None)


# why --format diffusers is refused (docs/generative.md, "diffusers models in")
DIFFUSERS_EXPORT = ("--format diffusers is not available for diffusio's UNet: its blocks normalise each width with "
                    "its own group count and take the prompt by FiLM and the noise level as EDM's c_noise, none "
                    "of which a diffusers UNet2DModel config can express, so a converted folder would sample "
                    "differently. Export to ONNX (--format onnx) instead; diffusers folders can be loaded by "
                    "diffusio (--model FOLDER)")


def export_onnx(model: str | Path | LoadedModel, path: str | Path, fmt: str = "onnx") -> Path:
    """Write the model's denoiser as an ONNX graph (opset 18, dynamic batch); returns the path.

    A JSON sidecar (``path + '.json'``) keeps the model config so the file is self-describing.
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    try:
        import onnxscript  # noqa: F401  (torch.onnx's exporter)
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise UsageError("ONNX export needs onnxscript and onnx; run: pip install 'diffusio[onnx]'") from err
    model = model if isinstance(model, LoadedModel) else load_model(model)
    path = _check_onnx_path(path)
    inputs = example_inputs(model)
    names = ["x", "sigma", "cond"][: len(inputs)]
    wrapper = _Exportable(model.denoiser, len(inputs) == 3).eval()
    batch = torch.export.Dim("batch", min=1, max=4096)
    shapes = {"x": {0: batch}, "sigma": {0: batch}, **({"cond": {0: batch}} if len(inputs) == 3 else {})}
    with atomic_path(path, suffix=".onnx") as tmp, torch.no_grad(), _quiet():
        program = torch.onnx.export(wrapper, inputs, input_names=names, output_names=["denoised"],
                                    dynamic_shapes=shapes, opset_version=OPSET, dynamo=True,
                                    external_data=False, verbose=False)
        program.save(str(tmp))
    atomic_save_json(str(path) + ".json", model.config)
    return path


def _check_onnx_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix != ".onnx":
        raise UsageError(f"the output should end in .onnx, got {path.name}; e.g. -o fashion.onnx")
    if not path.parent.is_dir():
        raise UsageError(f"folder {path.parent} does not exist; create it or choose another -o")
    return path


class OnnxDenoiser:
    """``D(x, sigma, cond)`` evaluated by onnxruntime; a drop-in for the torch denoiser in every sampler."""

    def __init__(self, path: str | Path, threads: int = 0, sigma_min: float = 0.002, sigma_max: float = 80.0):
        ort = _require_onnxruntime()
        path = Path(path)
        if not path.is_file():
            raise UsageError(f"no ONNX file at {path}; write one with: diffusio export MODEL -o {path.name}")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types
            raise UsageError(f"{path} is not a loadable ONNX model ({err}); re-export it") from err
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.sigma_min, self.sigma_max = sigma_min, sigma_max

    def __call__(self, x: torch.Tensor, sigma, cond: torch.Tensor | None = None) -> torch.Tensor:
        n = x.shape[0]
        sigma = torch.as_tensor(sigma, dtype=torch.float32).reshape(-1).expand(n)
        feed = {"x": x.detach().float().contiguous().numpy(), "sigma": sigma.contiguous().numpy()}
        if "cond" in self.inputs:
            if cond is None:  # the null condition, as the torch net treats None
                cond = torch.zeros((n, self.session.get_inputs()[2].shape[1]))
            feed["cond"] = cond.detach().float().contiguous().numpy()
        return torch.from_numpy(self.session.run(["denoised"], feed)[0])


def cached_onnx_denoiser(model: LoadedModel, path: str | Path | None = None) -> OnnxDenoiser:
    """An onnxruntime denoiser from ``path``, or from an export of ``model`` cached by its weights' hash."""
    import hashlib

    if path is None:
        from diffusio.generative.conditioning.text import cache_dir

        digest = hashlib.sha256((model.path / "model.safetensors").read_bytes()).hexdigest()[:16]
        path = cache_dir().parent / "onnx" / f"{model.path.name}-{digest}.onnx"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            export_onnx(model, path)
    denoiser = OnnxDenoiser(path, sigma_min=model.denoiser.sigma_min, sigma_max=model.denoiser.sigma_max)
    inputs = {i.name: i.shape for i in denoiser.session.get_inputs()}
    cond_dim = model.config.get("conditioning", {}).get("dim", 0)
    fits = (list(inputs.get("x", [])[1:]) == list(model.image_shape)
            and (inputs["cond"][1] if "cond" in inputs else 0) == cond_dim)
    if not fits:
        raise UsageError(f"{path} was exported from another model (inputs {inputs}); export this one with "
                         f"'diffusio export {model.path.name} -o FILE.onnx'")
    return denoiser


def calibration_batches(model: LoadedModel, data: str, batches: int = 16, batch_size: int = 32,
                        seed: int = 0):
    """Inputs the denoiser sees in real use: training images noised at EDM-distributed sigmas."""
    from diffusio.generative.data.datasets import load_dataset

    ds = load_dataset(data, "train")
    rng = np.random.default_rng(seed)
    cond_bank = model.class_embeddings
    cond_dim = model.config.get("conditioning", {}).get("dim", 0)
    for _ in range(batches):
        idx = rng.choice(len(ds), batch_size, replace=False)
        x0 = ds.images[idx]
        sigma = np.exp(rng.normal(-1.2, 1.2, batch_size)).astype(np.float32)
        feed = {"x": (x0 + sigma[:, None, None, None] * rng.standard_normal(x0.shape)).astype(np.float32),
                "sigma": sigma}
        if cond_dim:
            labels = ds.labels[idx] if ds.labels is not None else rng.integers(0, len(cond_bank), batch_size)
            cond = cond_bank[labels].numpy().astype(np.float32) if cond_bank is not None \
                else np.zeros((batch_size, cond_dim), np.float32)
            cond[rng.random(batch_size) < 0.1] = 0.0
            feed["cond"] = cond
        yield feed


def quantize_int8(onnx_path: str | Path, out_path: str | Path, model: LoadedModel, data: str,
                  batches: int = 16) -> dict:
    """Static int8 quantisation (QDQ, per-channel weights), calibrated on noised training images.

    Returns a report: which operator types were quantised and which stayed float, with counts.
    """
    _require_onnxruntime()
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(calibration_batches(model, data, batches))

        def get_next(self):
            return next(self.it, None)

    out_path = Path(out_path)
    with atomic_path(out_path, suffix=".onnx") as tmp, _quiet():
        quantize_static(str(onnx_path), str(tmp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                        op_types_to_quantize=list(INT8_OPS))
    return quantization_report(onnx.load(str(out_path)))


@dataclass
class Export:
    """What :func:`export` wrote: the file, its size, and for int8 which operators were quantised."""

    path: Path
    megabytes: float
    int8: dict | None = None  # quantization_report(), for int8 exports


def export(model: str | Path | LoadedModel, path: str | Path, *, fmt: str = "onnx", int8: bool = False,
           calibration_batches: int = 16) -> Export:
    """Export a model's denoiser: float ONNX, or int8 calibrated on its own training data.

    >>> result = export("fashion", "/tmp/fashion-doc.onnx")          # doctest: +SKIP
    >>> result.megabytes > 1                                        # doctest: +SKIP
    True
    """
    if fmt == "diffusers":  # before any work, whatever -o is
        raise UsageError(DIFFUSERS_EXPORT)
    model = model if isinstance(model, LoadedModel) else load_model(model)
    path = _check_onnx_path(path)
    if not int8:
        export_onnx(model, path, fmt)
        return Export(path, path.stat().st_size / 1e6)
    data = model.config.get("data", {}).get("name")
    if not data:  # before writing anything
        raise UsageError("this model does not record its training data; int8 calibration needs it")
    float_path = path.with_name(path.stem + "-float.onnx")
    export_onnx(model, float_path, fmt)
    try:
        report = quantize_int8(float_path, path, model, data, batches=calibration_batches)
    finally:
        float_path.unlink(missing_ok=True)
        Path(str(float_path) + ".json").unlink(missing_ok=True)
    atomic_save_json(str(path) + ".json", model.config)
    return Export(path, path.stat().st_size / 1e6, report)


# Convolutions and matrix products carry nearly all the arithmetic; they are what int8 speeds up.
INT8_OPS = ("Conv", "MatMul", "Gemm")


def quantization_report(graph_model) -> dict:
    """Counts of operators that run on int8 inputs (a quantised weight or activation feeds them) and of
    those left in float, by operator type."""
    nodes = graph_model.graph.node
    from_int8 = {o for n in nodes if n.op_type == "DequantizeLinear" for o in n.output}
    quantised, float_ops = {}, {}
    for n in nodes:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear"):
            continue
        int8 = n.op_type in INT8_OPS and any(i in from_int8 for i in n.input)
        bucket = quantised if int8 else float_ops
        bucket[n.op_type] = bucket.get(n.op_type, 0) + 1
    return {"int8": dict(sorted(quantised.items())), "float": dict(sorted(float_ops.items()))}
