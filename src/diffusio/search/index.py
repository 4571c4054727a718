"""``ImageIndex``: a folder of images embedded once with diffusion features, searched by text or example.

>>> import tempfile, pathlib
>>> from diffusio.generative.data.datasets import load_dataset, to_uint8
>>> from diffusio.generative.data.images import save_images
>>> test = load_dataset("fashion-mnist", "test")
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> for i in range(30):
...     _ = save_images(to_uint8(test.images[i:i + 1]), folder / f"{i:02d}.png")
>>> index = ImageIndex.build(folder, bank=4)         # bank: a small one, for speed
>>> len(index), index.dim          # 864 features + 10 class posteriors
(30, 874)
>>> _ = index.save(folder / "photos.index")
>>> index = ImageIndex.load(folder / "photos.index")
>>> best = index.query("a pair of jeans", k=3).hits[0]
>>> test.class_names[test.labels[int(Path(best.path).stem)]]
'Trouser'
>>> index.query(image=folder / "00.png", k=1).hits[0].similarity > 0.999
True
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from diffusio.errors import UsageError
from diffusio.search.features import DiffusionFeatures, recipe
from diffusio.search.head import class_head, posterior, shipped_head
from diffusio.search.files import image_files, read_image, to_float, to_model_pixels

FORMAT = "diffusio-search-index"
FORMAT_VERSION = 1
TEMPERATURE = 0.02  # softmax temperature of prompt-to-class similarities (cosine of MiniLM embeddings)
RERANK = 12         # hits re-sorted by the text-conditioned denoising error, by default (covers precision@10)
MAX_RERANK = 256
RERANK_WEIGHT = 0.3  # re-sorted by similarity + RERANK_WEIGHT * text score (chosen on training images)
BANK, BANK_STEPS = 32, 8  # generated images per class, and their sampling steps, for the class directions
MAX_BANK = 1000           # generated images per class at most (each costs ~16 network calls)
POSTERIOR = 3.0           # weight of sqrt(class posterior) beside the features in every stored vector


@dataclass
class Hit:
    """One image found: its rank (1 = best), id in the index, file, ``score`` (what the hits are
    sorted by), its similarity to the query (an example: cosine of the stored vectors, in [-1, 1];
    text: the image's probability of the prompt's classes, in [0, 1]) and, when the text reranking
    saw it, the diffusion-classifier text score (the share of denoising error the text removes)."""

    rank: int
    id: int
    path: str
    score: float
    similarity: float
    text_score: float | None = None


@dataclass
class SearchResult:
    query: str
    kind: str                      # "text" or "image"
    hits: list[Hit]
    seconds: float
    reranked: int = 0              # how many of the first hits were re-sorted by the text score
    notes: list[str] = field(default_factory=list)
    thumbnails: np.ndarray | None = field(default=None, repr=False)  # uint8 pixels of the hits

    def to_dict(self) -> dict:
        return {"query": self.query, "kind": self.kind, "seconds": round(self.seconds, 4), "reranked": self.reranked,
                "notes": self.notes,
                "hits": [asdict(h) for h in self.hits]}


@dataclass
class AddReport:
    added: int
    already: int        # files the index already held (not embedded again)
    unreadable: list[str]  # files skipped: "path: why"
    seconds: float

    @property
    def images_per_second(self) -> float:
        return self.added / self.seconds if self.seconds > 0 else float("inf")


class ImageIndex:
    """Diffusion features of a collection in a faiss inner-product index, with each image's path
    and a thumbnail (what the model saw), tied to one model's weights.  For a model with classes,
    each stored vector also holds the class posterior of a classifier learnt on generated images
    (the model's shipped head, or a bank drawn at the first index: :mod:`diffusio.search.head`; no
    label of any real image is used), and text queries rank by it."""

    def __init__(self, features: DiffusionFeatures, head: np.ndarray | None = None,
                 classes: list[str] | None = None, bank: tuple[int, int] = (BANK, BANK_STEPS),
                 head_info: dict | None = None):
        import faiss

        self.features = features
        self.head = None if head is None else np.asarray(head, np.float32)  # [classes, dim + 1]: weights | bias
        self.faiss = faiss.IndexFlatIP(features.dim + (0 if head is None else len(head)))
        self.paths: list[str] = []
        c, h, w = features.image_shape
        self.thumbs = np.zeros((0, h, w) if c == 1 else (0, h, w, 3), np.uint8)
        self.classes, self.bank = classes, bank
        self.head_info = head_info  # where the class head came from (the index file records it)
        self._posteriors: np.ndarray | None = None  # of the stored vectors, for text queries
        self.last_report: AddReport | None = None  # what build() embedded

    # ---------------------------------------------------------- building
    @classmethod
    def build(cls, folder: str | Path, model: str | Path = "fashion", *, progress: bool = False,
              bank: int | None = None, bank_steps: int = BANK_STEPS) -> "ImageIndex":
        """Embed every image under ``folder`` with ``model`` (a shipped name or a run folder).

        The classes of a model are learnt from images it generated: its shipped class head if it
        has one for these weights (``fashion`` does: 1,000 samples per class), else ``bank`` images
        per class (default 32) drawn with ``bank_steps`` sampling steps at the first index and
        cached.  ``bank`` given: always draw that bank.
        """
        files = image_files(folder)
        index = cls.empty(model, bank=bank, bank_steps=bank_steps)
        report = index.add(files, progress=progress)
        if report.added == 0:
            raise UsageError(f"none of the {len(files)} image files in {folder} could be read "
                             f"(first: {report.unreadable[0]}); nothing to index")
        index.last_report = report
        return index

    @classmethod
    def empty(cls, model: str | Path = "fashion", *, bank: int | None = None,
              bank_steps: int = BANK_STEPS) -> "ImageIndex":
        """An index with no images yet (see :meth:`build` for ``bank``)."""
        for name, value, most in (("bank", BANK if bank is None else bank, MAX_BANK), ("bank_steps", bank_steps, 200)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= most:
                raise UsageError(f"{name} must be an integer in [1, {most}], got {value!r}")
        fx = DiffusionFeatures.load(model)
        known = fx.class_conditions()
        drawn = (BANK if bank is None else int(bank), int(bank_steps))
        if known is None:
            return cls(fx, bank=drawn)
        names, conds = known
        shipped = shipped_head(fx, len(names)) if bank is None else None
        if shipped is not None:
            head, meta = shipped
            info = {"source": "shipped", **{k: meta.get(k) for k in ("samples", "per_class", "c")}}
            return cls(fx, head, names, drawn, info)
        info = {"source": "generated", "per_class": drawn[0], "steps": drawn[1]}
        return cls(fx, class_head(fx, conds, *drawn), names, drawn, info)

    def add(self, source, *, progress: bool = False) -> AddReport:
        """Embed the images of a folder (or a list of files) that the index does not hold yet.

        Unreadable files are skipped and listed in the report; files already indexed (same
        resolved path) are not embedded again.
        """
        from tqdm.auto import tqdm

        started = time.perf_counter()
        files = image_files(source) if not isinstance(source, (list, tuple)) else [Path(p) for p in source]
        held, new = set(self.paths), []
        for p in files:  # each resolved path once, and none the index holds
            key = str(Path(p).resolve())
            if key not in held:
                held.add(key)
                new.append(p)
        pixels, names, unreadable = [], [], []
        shape = self.features.image_shape
        for path in new:
            try:
                image, _ = read_image(path, shape)
            except UsageError as err:
                unreadable.append(str(err))
                continue
            pixels.append(image)
            names.append(str(Path(path).resolve()))
        if pixels:
            stack = np.stack(pixels)
            bar = tqdm(total=len(stack), desc="embedding", unit="img", disable=not progress)
            vectors = self.encode(to_float(stack), progress=bar.update)
            bar.close()
            self.faiss.add(vectors)
            self.paths += names
            self.thumbs = np.concatenate([self.thumbs, stack])
        return AddReport(len(names), len(files) - len(new), unreadable, time.perf_counter() - started)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def dim(self) -> int:
        return self.faiss.d

    def encode(self, images: np.ndarray, progress=None) -> np.ndarray:
        """The stored vector of each image: its diffusion features and, for a model with classes,
        ``POSTERIOR * sqrt(p(class | block))`` from the classifier learnt on generated images,
        scaled to unit length (the features and the root posterior are unit vectors each)."""
        if self.head is None:
            return self.features.embed(images, progress=progress)
        x, p = self.features.embed_with_block(images, progress, block_map=lambda block: posterior(block, self.head))
        return (np.concatenate([x, POSTERIOR * np.sqrt(p)], 1) / np.sqrt(1 + POSTERIOR ** 2)).astype(np.float32)

    def vectors(self) -> np.ndarray:
        """The stored features, ``[N, dim]``."""
        return self.faiss.reconstruct_n(0, self.faiss.ntotal) if len(self) else np.zeros((0, self.dim), np.float32)

    # ---------------------------------------------------------- files
    def header(self) -> dict:
        from diffusio import __version__

        return {"format": FORMAT, "format_version": FORMAT_VERSION, "diffusio": __version__,
                "model": self.features.name, "model_sha256": self.features.digest, "features": recipe(),
                "dim": self.dim, "count": len(self), "classes": self.classes, "posterior_weight": POSTERIOR,
                "bank": {"per_class": self.bank[0], "steps": self.bank[1]}, "class_head": self.head_info,
                "vector_index": "faiss IndexFlatIP (exact inner product of unit vectors = cosine)",
                "paths": self.paths}

    def save(self, path: str | Path) -> Path:
        """Write the index to one file, atomically (a reader or a crash never sees half of it)."""
        import faiss
        from safetensors.numpy import save_file

        from diffusio._io import atomic_path, check_output

        path = check_output(path, flag="-o")
        if not len(self):
            raise UsageError("the index is empty; add images before saving it")
        tensors = {"faiss": faiss.serialize_index(self.faiss), "thumbnails": np.ascontiguousarray(self.thumbs)}
        if self.head is not None:
            tensors["classifier"] = np.ascontiguousarray(self.head, dtype=np.float32)
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={"format": FORMAT, "header": json.dumps(self.header())})
        return path

    @classmethod
    def load(cls, path: str | Path, model: str | Path | None = None) -> "ImageIndex":
        """Read an index written by :meth:`save`; refused if it was built by another model (or
        ``model``, when given, is not the one that built it) or by another feature recipe."""
        import faiss
        from safetensors import SafetensorError, safe_open

        path = Path(path)
        if not path.is_file():
            raise UsageError(f"no index {path}; build one with: diffusio search index FOLDER -o {path.name}")
        try:
            with safe_open(str(path), "np") as fh:
                meta = fh.metadata() or {}
                if meta.get("format") != FORMAT:
                    raise UsageError(f"{path} is not a diffusio search index; build one with diffusio search index")
                header = json.loads(meta["header"])
                tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        except (SafetensorError, OSError, ValueError, KeyError) as err:
            raise UsageError(f"cannot read {path} as a diffusio search index ({err}); rebuild it with "
                             "diffusio search index") from None
        rebuild = f"rebuild it: diffusio search index FOLDER -o {path.name}"
        if (header.get("format_version") != FORMAT_VERSION or header.get("features") != recipe()
                or header.get("posterior_weight") != POSTERIOR):
            raise UsageError(f"{path} was written by another version of diffusio search (diffusio "
                             f"{header.get('diffusio')}, index format {header.get('format_version')}, features "
                             f"version {header.get('features', {}).get('version')}); {rebuild}")
        if model is not None and str(model) != header["model"]:
            fx = DiffusionFeatures.load(model)
            if fx.digest != header["model_sha256"]:
                raise UsageError(f"{path} was built by model {header['model']!r}, not {str(model)!r}: features of "
                                 f"different models do not compare; query without --model, or {rebuild} --model {model}")
        else:
            fx = DiffusionFeatures.load(header["model"])
        if fx.digest != header["model_sha256"]:
            raise UsageError(f"{path} was built by another model than the {header['model']!r} found now (weights "
                             f"sha256 {header['model_sha256'][:12]}..., now {fx.digest[:12]}...); {rebuild}")
        index = cls(fx, tensors.get("classifier"), header.get("classes"),
                    (header["bank"]["per_class"], header["bank"]["steps"]), header.get("class_head"))
        index.faiss = faiss.deserialize_index(tensors["faiss"])
        index.paths = list(header["paths"])
        index.thumbs = tensors["thumbnails"]
        if index.faiss.ntotal != len(index.paths) or len(index.thumbs) != len(index.paths) or index.faiss.d != header["dim"]:
            raise UsageError(f"{path} is inconsistent ({index.faiss.ntotal} vectors, {len(index.paths)} paths); {rebuild}")
        return index

    # ---------------------------------------------------------- queries
    def query(self, text: str | None = None, *, image=None, k: int = 20, rerank: int | bool | None = None,
              rerank_weight: float = RERANK_WEIGHT) -> SearchResult:
        """The ``k`` images that best match ``text`` or the example ``image`` (a file path, its bytes,
        or uint8 pixels of any size: converted to the model's, with a note).

        Text, for a model with classes: the prompt's weights over the classes (a class it names
        exactly, else the MiniLM similarity of the prompt to each class) times each image's class
        posterior rank the collection (``Hit.similarity`` is that probability); then the first
        ``rerank`` hits (default 12; 0 or False: none) are re-sorted by the text-conditioned
        denoising error.  Examples, and text for a model without classes: cosine in the faiss index.
        """
        started = time.perf_counter()
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise UsageError(f"k must be a positive integer, got {k!r}")
        if (text is None) == (image is None):
            raise UsageError("give a text query or an example image (--image), not both or neither")
        if not len(self):
            raise UsageError("the index is empty; add images first")
        k = min(int(k), len(self))
        notes: list[str] = []
        if image is not None:
            q, notes = self._image_vector(image)
            label, kind, shortlist, cond = (str(image) if isinstance(image, (str, Path)) else "image"), "image", k, None
        else:
            if not isinstance(text, str) or not text.strip():
                raise UsageError("empty query; give some text, e.g. \"running shoes\", or --image FILE")
            rerank = RERANK if rerank is None or rerank is True else int(rerank or 0)
            if not 0 <= rerank <= MAX_RERANK:
                raise UsageError(f"rerank must be in [0, {MAX_RERANK}] (each reranked image costs 4 network calls), "
                                 f"got {rerank}")
            cond = self.features.text_condition(text)
            label, kind, shortlist = text, "text", max(k, min(rerank, len(self)))
            q = self._class_weights(text, cond, notes) if self.head is not None else self._text_vector(cond, notes)
        if kind == "text" and self.head is not None:
            probs = self.posteriors() @ q
            ids = np.argsort(-probs, kind="stable")[:shortlist]
            sims = probs[ids]
        else:
            sims, ids = self.faiss.search(q[None].astype(np.float32), shortlist)
            sims, ids = sims[0].astype(np.float64), ids[0]
        scores, reranked = np.full(len(ids), np.nan), 0
        keys = sims.copy()
        if kind == "text" and rerank:
            reranked = min(rerank, len(ids))
            scores[:reranked] = self.features.text_scores(to_float(self.thumbs[ids[:reranked]]), cond)
            keys[:reranked] = sims[:reranked] + rerank_weight * scores[:reranked]
            order = np.concatenate([np.argsort(-keys[:reranked], kind="stable"), np.arange(reranked, len(ids))])
            sims, ids, scores, keys = sims[order], ids[order], scores[order], keys[order]
        hits = [Hit(r + 1, int(ids[r]), self.paths[ids[r]], float(keys[r]), float(sims[r]),
                    None if np.isnan(scores[r]) else float(scores[r])) for r in range(k)]
        return SearchResult(label, kind, hits, time.perf_counter() - started, min(reranked, k), notes,
                            self.thumbs[ids[:k]])

    def _image_vector(self, image) -> tuple[np.ndarray, list[str]]:
        shape = self.features.image_shape
        if isinstance(image, (str, Path, bytes)):
            pixels, note = read_image(image, shape)
        else:
            pixels, note = to_model_pixels(image, shape, "the query image")
        return self.encode(to_float(pixels[None]))[0], [note] if note else []

    def posteriors(self) -> np.ndarray:
        """Each stored image's class posterior, ``[N, classes]`` (read back from its vector)."""
        if self._posteriors is None or len(self._posteriors) != len(self):
            root = self.vectors()[:, self.features.dim:].astype(np.float64) * np.sqrt(1 + POSTERIOR ** 2) / POSTERIOR
            self._posteriors = root ** 2
        return self._posteriors

    def _class_weights(self, text: str, cond, notes: list[str]) -> np.ndarray:
        """What the prompt asks for, as weights over the classes: a class it names exactly
        ("Trouser", "top" of "T-shirt/top"), else a softmax of the prompt's MiniLM similarity to
        each class's condition vector."""
        import torch

        names = self.classes or []
        said = text.strip().lower()
        named = [i for i, name in enumerate(names) if said in [name.lower(), *name.lower().split("/")]]
        if named:
            notes.append(f"the query names the class {names[named[0]]}")
            return np.eye(len(names))[named[0]]
        _, conds = self.features.class_conditions()
        d = min(conds.shape[1], cond.shape[0])
        weights = torch.softmax((conds[:, :d] @ cond[:d]).double() / TEMPERATURE, 0).numpy()
        notes.append("closest classes: " + ", ".join(f"{names[i]} {weights[i]:.2f}"
                                                      for i in np.argsort(-weights)[:3] if weights[i] >= 0.01))
        return weights

    def _text_vector(self, cond, notes: list[str]) -> np.ndarray:
        """A model without classes: the mean feature of a few images generated from the prompt (seeded)."""
        n = min(self.bank[0], 8)
        generated = self.features.generate(cond[None], n, self.bank[1], seed=0)
        q = self.features.embed(generated).mean(0).astype(np.float64)
        notes.append(f"query vector from {n} images generated from the prompt")
        return (q / max(np.linalg.norm(q), 1e-12)).astype(np.float32)
