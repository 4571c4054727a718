"""The HTTP API (``/v1/...``, OpenAPI schema at ``/openapi.json``) and the pages that use it.

Images travel as base64 PNG inside JSON, so uploads never touch the disk; an uploaded edge list is
parsed from a temporary folder that is removed at once, inside one folder per server process
(``diffusio-studio-<pid>``, removed at exit; a studio that starts removes those of killed ones).
Error messages never name these paths.  Every request is bounded (:class:`Limits`):
n, steps, trials, upload sizes, and wall time (the request answers 503 when the time is up).
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import binascii
import os
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from diffusio.errors import Cancelled, UsageError

STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True)
class Limits:
    max_n: int = 64
    max_steps: int = 100
    max_trials: int = 2000
    max_image_bytes: int = 256 * 1024
    max_edge_list_bytes: int = 2 * 1024 * 1024
    max_nodes_drawn: int = 3000
    request_seconds: float = 120.0
    max_running: int = 2  # requests at work at once; more get 429 instead of queueing without end


# ---------------------------------------------------------------- request bodies
class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not silently ignored


class GenerateRequest(Strict):
    prompt: str | None = Field(None, max_length=300, description="free text; null for unconditional")
    label: str | None = Field(None, max_length=50, description="class name or index instead of a prompt")
    model: str = Field("fashion", max_length=100, pattern=r"^[A-Za-z0-9_.-]+$", description="a shipped model")
    sampler: str | None = None
    steps: int | None = Field(None, ge=1)
    guidance: float | None = Field(None, ge=0, le=30)
    seed: int = Field(0, ge=0, le=2 ** 31 - 1)
    n: int = Field(8, ge=1)


class InpaintRequest(Strict):
    image: str = Field(..., description="base64 PNG (data: URL accepted)")
    mask: str = Field(..., description="base64 PNG; white = generate")
    prompt: str | None = Field(None, max_length=300)
    model: str = Field("fashion", max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    steps: int = Field(25, ge=1)
    seed: int = Field(0, ge=0, le=2 ** 31 - 1)
    recon: float = Field(0.0, ge=0, le=1000, description="reconstruction guidance, one pass per step instead of "
                         "RePaint resampling (30 is a good start; needs no classes)")


class SpreadRequest(Strict):
    graph: str | None = Field("karate", max_length=100, description="a built-in graph (see /v1/graphs)")
    edges: str | None = Field(None, description="or an edge list as CSV text: source,target[,weight] per line")
    model: str = "sir"
    params: dict[str, float] = Field(default_factory=lambda: {"beta": 0.1, "gamma": 0.1})
    seeds: list[int | str] | None = None
    trials: int = Field(200, ge=1)
    seed: int = Field(0, ge=0, le=2 ** 31 - 1)
    max_steps: int = Field(200, ge=1, le=5000)
    draw_graph: bool = True


class SearchRequest(Strict):
    text: str | None = Field(None, max_length=300, description="what to look for, e.g. running shoes")
    image: str | None = Field(None, description="or an example image: base64 PNG/JPEG (data: URL accepted)")
    k: int = Field(20, ge=1, le=200)
    rerank: int | None = Field(None, ge=0, le=64, description="hits re-sorted by the text score (default 12)")


# ---------------------------------------------------------------- helpers
def _png_b64(pixels: np.ndarray) -> str:
    from diffusio.generative.data.images import png_bytes

    return base64.b64encode(png_bytes(pixels)).decode()


def _file_b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _decode_png(text: str, what: str, limit: int) -> np.ndarray:
    from diffusio.generative.data.images import decode_image

    if text.startswith("data:"):
        text = text.split(",", 1)[-1]
    if len(text) > limit * 4 // 3 + 4:
        raise UsageError(f"{what} is larger than {limit // 1024} KiB; send a smaller image")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as err:
        raise UsageError(f"{what} is not base64 ({err})") from None
    return decode_image(raw, "L", what)


@lru_cache(maxsize=4)
def _generator(name: str):
    from diffusio.generative import Generator
    from diffusio.generative.pipeline import shipped_catalog

    if name not in shipped_catalog():
        raise UsageError(f"unknown model {name!r}; the studio serves: {', '.join(shipped_catalog())}")
    return Generator.load(name)


TEMP_PREFIX = "diffusio-studio-"


def _temp_root() -> Path:
    """This process's one folder for request files (``diffusio-studio-<pid>``), removed at exit; folders
    of processes that are gone (killed mid-request) are removed when a studio starts."""
    root = Path(tempfile.gettempdir()) / f"{TEMP_PREFIX}{os.getpid()}"
    if not root.is_dir():
        root.mkdir(mode=0o700, exist_ok=True)
        atexit.register(shutil.rmtree, root, True)
    return root


def _remove_stale_temp_folders() -> None:
    for folder in Path(tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*"):
        pid = folder.name[len(TEMP_PREFIX):]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue  # the old per-request names (random) and our own are left alone
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (PermissionError, OverflowError):
            pass


def _public(message: str) -> str:
    """An error for the client: temporary paths of this server become "the upload"."""
    return re.sub(re.escape(tempfile.gettempdir()) + r"/" + TEMP_PREFIX + r"[^\s'\"]*", "the upload", message)


def _check(value: int | None, limit: int, what: str) -> None:
    if value is not None and value > limit:
        raise UsageError(f"{what} = {value} is over this server's limit of {limit}")


# ---------------------------------------------------------------- the work (run in a thread)
class Budget:
    """A request's time limit, checked by the work itself so that a 503 also stops the work."""

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds
        self.cancelled = threading.Event()

    def expired(self) -> bool:
        return self.cancelled.is_set() or time.monotonic() > self.deadline


def generate(req: GenerateRequest, limits: Limits, budget: Budget) -> dict:
    from diffusio.generative.data.images import make_grid

    _check(req.n, limits.max_n, "n")
    _check(req.steps, limits.max_steps, "steps")
    gen = _generator(req.model)
    start = time.perf_counter()
    prompt = req.prompt if req.prompt and req.prompt.strip() else None
    made = gen.sample(prompt, n=req.n, label=req.label, steps=req.steps, sampler=req.sampler,
                      guidance=req.guidance, seed=req.seed, should_stop=budget.expired)
    images = made.uint8()
    return {"grid": _png_b64(make_grid(images, scale=4)), "images": [_png_b64(im) for im in images], "nfe": made.nfe,
            "seconds": round(time.perf_counter() - start, 3), "model": req.model}


def inpaint_image(req: InpaintRequest, limits: Limits, budget: Budget) -> dict:
    from diffusio.generative.data.datasets import to_uint8
    from diffusio.generative.editing.edits import inpaint

    _check(req.steps, limits.max_steps, "steps")
    gen = _generator(req.model)
    image = _decode_png(req.image, "image", limits.max_image_bytes)
    mask = _decode_png(req.mask, "mask", limits.max_image_bytes)
    c, h, w = gen.model.image_shape
    if image.shape != (h, w):
        raise UsageError(f"image is {image.shape[1]}x{image.shape[0]}; this model works on {w}x{h} images")
    if mask.shape != image.shape:
        raise UsageError(f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is {w}x{h}; they must match")
    fill = mask > 127
    if not fill.any() or fill.all():
        raise UsageError("the mask is " + ("empty" if not fill.any() else "full") + "; paint the part to regenerate")
    x = np.repeat(image[None, None].astype(np.float32) / 127.5 - 1.0, c, axis=1)
    cond = gen.condition(1, prompt=req.prompt) if req.prompt and req.prompt.strip() else None
    start = time.perf_counter()
    # as `diffusio inpaint`: without a prompt, the class the context classifier names; recon: one pass per step
    result = inpaint(gen, x, fill.astype(np.float32), cond=cond, steps=req.steps, seed=req.seed,
                     auto_class=cond is None and gen.model.class_embeddings is not None, recon=req.recon,
                     should_stop=budget.expired)
    return {"image": _png_b64(to_uint8(result.images.numpy())[0]), "nfe": result.nfe,
            "seconds": round(time.perf_counter() - start, 3)}


def simulate_spread(req: SpreadRequest, limits: Limits, budget: Budget) -> dict:
    from diffusio import spread
    from diffusio.spread.plot import plot_curves, plot_final_states
    from diffusio.spread.registry import build_model

    _check(req.trials, limits.max_trials, "trials")
    if req.edges is not None and "graph" in req.model_fields_set:  # one would be ignored (found by the probe)
        raise UsageError("give graph (a built-in name) or edges (CSV text), not both")
    model = build_model(req.model, **req.params)
    with tempfile.TemporaryDirectory(dir=_temp_root()) as tmp:
        if req.edges is not None:
            if len(req.edges.encode()) > limits.max_edge_list_bytes:
                raise UsageError(f"edge list is larger than {limits.max_edge_list_bytes // 1024} KiB")
            path = Path(tmp) / "edges.csv"
            path.write_text(req.edges)
            graph = spread.read_edge_list(path)
            graph.name = "uploaded graph"
        else:
            graph = spread.load_dataset(req.graph or "karate")
        result = spread.simulate(graph, model, seeds=req.seeds, trials=req.trials, seed=req.seed,
                                 max_steps=req.max_steps, final_states=req.draw_graph, should_stop=budget.expired)
        curve = plot_curves(result, Path(tmp) / "curve.png")
        out = {"graph": graph.name, "nodes": graph.n_nodes, "edges": graph.n_edges, "states": list(result.states),
               "summary": result.summary().round(4).to_dict(orient="list"), "curve": _file_b64(curve)}
        if req.draw_graph and graph.n_nodes <= limits.max_nodes_drawn:
            out["final_states"] = _file_b64(plot_final_states(result, Path(tmp) / "final.png"))
        return out


@lru_cache(maxsize=2)
def _search_index(path: str):
    from diffusio.search import ImageIndex

    return ImageIndex.load(path)


def search_images(req: SearchRequest, limits: Limits, budget: Budget, index_path: str | None = None) -> dict:
    """The served index (``DIFFUSIO_SEARCH_INDEX``) queried by text or an example image."""
    if not index_path:
        raise UsageError("this studio serves no search index; start it with DIFFUSIO_SEARCH_INDEX=photos.index "
                         "(an index written by: diffusio search index FOLDER -o photos.index)")
    image = None
    if req.image is not None:
        text = req.image.split(",", 1)[-1] if req.image.startswith("data:") else req.image
        if len(text) > limits.max_image_bytes * 4 // 3 + 4:
            raise UsageError(f"image is larger than {limits.max_image_bytes // 1024} KiB; send a smaller image")
        try:
            image = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as err:
            raise UsageError(f"image is not base64 ({err})") from None
    result = _search_index(index_path).query(req.text, image=image, k=req.k, rerank=req.rerank)
    return {**result.to_dict(), "thumbnails": [_png_b64(t) for t in result.thumbnails]}


# ---------------------------------------------------------------- the app
# One function on purpose: every route is a closure over the same limits, budget and queue, and
# each route body is a few lines that call the API.
def create_app(limits: Limits = Limits()) -> FastAPI:
    """The studio app; serve it with uvicorn (``diffusio serve``) or test it in-process."""
    _remove_stale_temp_folders()
    app = FastAPI(title="diffusio studio", version="1",
                  description="Generate and inpaint images, and simulate spread on networks, over the diffusio API.")

    @app.exception_handler(UsageError)
    async def usage_error(request: Request, err: UsageError):
        return JSONResponse(status_code=400, content={"detail": _public(str(err))})

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, err: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}"
                             for e in err.errors())
        return JSONResponse(status_code=422, content={"detail": problems})

    running = {"n": 0}  # requests at work (the event loop is one thread: no lock needed)

    async def bounded(fn, req):
        if running["n"] >= limits.max_running:
            raise HTTPException(429, f"{running['n']} requests are already running (the limit is "
                                     f"{limits.max_running}); try again in a moment")
        budget = Budget(limits.request_seconds)
        running["n"] += 1
        work = asyncio.ensure_future(run_in_threadpool(fn, req, limits, budget))
        try:
            return await asyncio.wait_for(asyncio.shield(work), limits.request_seconds)
        except asyncio.TimeoutError:
            budget.cancelled.set()  # the work checks this every step and stops within a step
            raise HTTPException(503, f"the request took longer than {limits.request_seconds:g} s; "
                                     "ask for fewer images, steps or trials") from None
        except Cancelled:
            raise HTTPException(503, f"the request took longer than {limits.request_seconds:g} s; "
                                     "ask for fewer images, steps or trials") from None
        except (ValueError, KeyError) as err:  # bad parameter values found deep in the library
            raise HTTPException(400, _public(str(err))) from err
        finally:
            work.add_done_callback(lambda _: running.__setitem__("n", running["n"] - 1))

    @app.post("/v1/generate", summary="Images from a prompt, a label, or unconditionally")
    async def v1_generate(req: GenerateRequest) -> dict:
        return await bounded(generate, req)

    @app.post("/v1/inpaint", summary="Regenerate the white part of a mask")
    async def v1_inpaint(req: InpaintRequest) -> dict:
        return await bounded(inpaint_image, req)

    @app.post("/v1/spread/simulate", summary="Monte Carlo spread: mean curves with bands, final states")
    async def v1_spread(req: SpreadRequest) -> dict:
        return await bounded(simulate_spread, req)

    @app.post("/v1/search", summary="Search the served image index by text or by an example image")
    async def v1_search(req: SearchRequest) -> dict:
        import os

        path = os.environ.get("DIFFUSIO_SEARCH_INDEX")
        return await bounded(lambda r, lim, bud: search_images(r, lim, bud, path), req)

    @app.get("/v1/models", summary="Shipped models, their samplers and defaults")
    async def v1_models() -> dict:
        from diffusio.generative.pipeline import samplers, shipped_catalog

        return {"models": shipped_catalog(), "samplers": list(samplers()), "limits": limits.__dict__}

    @app.get("/v1/graphs", summary="Built-in graphs and spread models")
    async def v1_graphs() -> dict:
        from diffusio.spread.datasets import dataset_names
        from diffusio.spread.registry import NAMES, parameters

        return {"graphs": dataset_names(), "models": {name: sorted(parameters(name)) for name in NAMES}}

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for page in ("index", "inpaint", "spread", "search"):
        route = "/" if page == "index" else f"/{page}"
        app.add_api_route(route, _page(page), include_in_schema=False)
    return app


def _page(name: str):
    async def serve() -> FileResponse:
        return FileResponse(STATIC / f"{name}.html")
    return serve
