"""The file-level entry points the CLI and the studio call: index a folder into a file, query a file."""

from __future__ import annotations

from pathlib import Path

from diffusio.errors import UsageError
from diffusio.search.index import AddReport, ImageIndex, SearchResult


def index_folder(folder: str | Path, output: str | Path, *, model: str | None = None, rebuild: bool = False,
                 progress: bool = False, **build) -> tuple[ImageIndex, AddReport]:
    """Embed the images of ``folder`` into the index file ``output``: a new index, or an existing
    one extended with the images it does not hold yet (``rebuild``: start afresh).  The file is
    replaced atomically only when everything worked."""
    from diffusio._io import check_output
    from diffusio.search.files import image_files

    output = check_output(output, flag="-o")
    files = image_files(folder)  # an empty or missing folder fails before any model is loaded
    if output.exists() and not rebuild:
        index = ImageIndex.load(output, model)
    else:
        index = ImageIndex.empty(model or "fashion", **build)
    report = index.add(files, progress=progress)
    if not len(index):
        raise UsageError(f"none of the {len(files)} image files in {folder} could be read "
                         f"(first: {report.unreadable[0]}); nothing written")
    index.save(output)
    return index, report


def query_index(index: str | Path | ImageIndex, text: str | None = None, *, image=None, k: int = 20,
                rerank: int | None = None, model: str | None = None, picture: str | Path | None = None) -> SearchResult:
    """Query an index file (or a loaded index); ``picture``: also write the hits picture there."""
    from diffusio._io import check_output
    from diffusio.search.picture import save_hits

    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise UsageError(f"k must be a positive integer, got {k!r}")
    if picture is not None:  # the query image and the index are inputs: never written over
        inputs = tuple(p for p in (image, index) if isinstance(p, (str, Path)))
        check_output(picture, suffixes=(".png", ".jpg", ".jpeg"), flag="-o", inputs=inputs)
    if not isinstance(index, ImageIndex):
        index = ImageIndex.load(index, model)
    result = index.query(text, image=image, k=k, rerank=rerank)
    if picture is not None:
        save_hits(result, picture)
    return result
