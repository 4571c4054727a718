"""Datasets as float32 NCHW in [-1, 1] with labels and captions (``datasets``); image files and
grids (``images``).

May import: ``conditioning.captions`` (class phrasings), ``checkpoint.files`` (atomic writes).
"""
