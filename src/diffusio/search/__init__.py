"""Image search with diffusion: find images in your own collection by text or by example.

``ImageIndex.build(folder)`` embeds every image once with a diffusion model's features (a faiss
index inside one file); ``index.query("running shoes")`` ranks by those features and re-sorts the
best hits by how well the text explains each image (the text-conditioned denoising error);
``index.query(image="example.png")`` finds the nearest neighbours.  See docs/search.md.
"""

from diffusio.search.features import DiffusionFeatures
from diffusio.search.index import AddReport, Hit, ImageIndex, SearchResult
from diffusio.search.picture import save_hits

__all__ = ["AddReport", "DiffusionFeatures", "Hit", "ImageIndex", "SearchResult", "save_hits"]
