"""Graphs from files, read in chunks so that a 10^8-edge file never sits in memory as text.

* CSV / TSV / space-separated edge lists: ``source, target[, weight]`` per line, header optional,
  ``#`` comments; read by pandas' C parser in chunks of a few million lines.
* ``.npz`` (numpy, no pickle): either CSR arrays ``indptr`` and ``indices`` (nodes ``0..n-1``,
  optional ``weights``), or edge columns ``source`` and ``target`` (optional ``weight``).
* ``.parquet``: the first two columns are source and target, an optional third the weight; read
  one row group at a time (needs ``pyarrow``: ``pip install 'diffusio[parquet]'``).

Every path ends in the same CSR builder, so labels, duplicates and validation behave alike.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from diffusio.errors import UsageError
from diffusio.spread.graph import Graph, _from_matrix, csr_graph, _symmetrised

CHUNK_LINES = 4_000_000
_HEADER_WORDS = {"source", "target", "src", "dst", "from", "to", "u", "v", "node1", "node2", "weight", "w"}


def read_edge_list(path: str | os.PathLike, *, directed: bool = False, delimiter: str | None = None) -> Graph:
    """Read a graph file: a CSV/TSV edge list, an ``.npz`` or a ``.parquet`` file (see the module notes).

    Parameters
    ----------
    path : str or path
        The file.  ``.tsv`` files are tab separated; other text files are sniffed (comma, tab,
        semicolon, space).
    directed : bool
        Treat each edge as one-way (default: undirected, each edge counts both ways).
    delimiter : str, optional
        Force the column separator of a text file.

    Returns
    -------
    Graph
        Labels are integers when every label is an integer, strings otherwise, in order of first
        appearance.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "edges.csv"
    >>> _ = path.write_text("source,target,weight\\na,b,0.5\\nb,c,1\\n")
    >>> read_edge_list(path).n_edges
    2
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"edge-list file {str(path)!r} not found; pass an existing CSV/TSV/.npz/.parquet file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _read_npz(path, directed)
    if suffix == ".parquet":
        return _edges_to_graph(path, _parquet_chunks(path), directed)
    if delimiter is None and suffix == ".tsv":
        delimiter = "\t"
    return _edges_to_graph(path, _text_chunks(path, delimiter), directed)


def _first_row(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start < len(head) - 4:  # not merely a character cut at the end of the block
            raise UsageError(f"edge list {str(path)!r} is not UTF-8 text; write one 'source,target[,weight]' "
                             "per line") from None
        text = head[:err.start].decode("utf-8")
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return line
    raise UsageError(f"edge list {str(path)!r} has no edges; write one 'source,target[,weight]' per line")


def _sniff(line: str) -> str:
    try:
        return csv.Sniffer().sniff(line, delimiters=",\t; |").delimiter
    except csv.Error:
        return ","


def _looks_like_header(row: list[str]) -> bool:
    if row[0].strip().lower() in _HEADER_WORDS or row[1].strip().lower() in _HEADER_WORDS:
        return True
    if len(row) > 2:
        try:
            float(row[2])
        except ValueError:
            return True
    return False


def _text_chunks(path: Path, delimiter: str | None):
    """(sources, targets, weights or None) per chunk of a text edge list."""
    first = _first_row(path)
    delimiter = delimiter or _sniff(first)
    row = [x for x in (first.split() if delimiter == " " else first.split(delimiter))]
    if len(row) < 2:
        raise UsageError(f"edge list {str(path)!r} needs at least two columns (source, target); "
                         "write one 'source,target[,weight]' per line")
    header = _looks_like_header(row)
    sep = r"\s+" if delimiter == " " else delimiter
    try:
        reader = pd.read_csv(path, sep=sep, header=None, comment="#", skipinitialspace=True, usecols=[0, 1, 2][
            :min(len(row), 3)], chunksize=CHUNK_LINES, skiprows=_header_line(path) if header else None,
            engine="c", skip_blank_lines=True, float_precision="round_trip")
        for chunk in reader:
            weights = chunk.iloc[:, 2] if chunk.shape[1] > 2 else None
            yield chunk.iloc[:, 0].to_numpy(), chunk.iloc[:, 1].to_numpy(), weights
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, csv.Error, ValueError) as err:
        raise UsageError(f"cannot read edge list {str(path)!r} ({str(err).splitlines()[0]}); "
                         "write one 'source,target[,weight]' per line") from None


def _header_line(path: Path) -> list[int]:
    """The 0-based line number of the header (the first line that is neither blank nor a comment)."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh):
            if line.strip() and not line.lstrip().startswith("#"):
                return [number]
    return []


def _parquet_chunks(path: Path):
    try:
        import pyarrow.parquet as pq
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError("No module named 'pyarrow'", name="pyarrow") from err
    try:
        file = pq.ParquetFile(path)
    except Exception as err:  # noqa: BLE001 - pyarrow raises its own error types for bad files
        raise UsageError(f"cannot read parquet file {str(path)!r} ({err}); write source,target[,weight] columns")
    names = file.schema_arrow.names
    if len(names) < 2:
        raise UsageError(f"parquet file {str(path)!r} needs at least two columns (source, target)")
    for batch in file.iter_batches(batch_size=CHUNK_LINES, columns=names[:3]):
        columns = [batch.column(i).to_numpy(zero_copy_only=False) for i in range(batch.num_columns)]
        yield columns[0], columns[1], (pd.Series(columns[2]) if len(columns) > 2 else None)


def _read_npz(path: Path, directed: bool) -> Graph:
    try:
        with np.load(path, allow_pickle=False) as npz:  # no pickle: object arrays are refused
            data = {key: npz[key] for key in npz.files}
        keys = set(data)
    except (ValueError, OSError, EOFError) as err:
        raise UsageError(f"cannot read {str(path)!r} as .npz ({err}); save arrays with numpy.savez") from None
    if {"indptr", "indices"} <= keys:
        return csr_file_graph(path, data["indptr"], data["indices"], data["weights"] if "weights" in keys else None,
                              directed)
    if {"source", "target"} <= keys:
        weights = pd.Series(data["weight"]) if "weight" in keys else None
        return _edges_to_graph(path, iter([(data["source"], data["target"], weights)]), directed)
    raise UsageError(f"{str(path)!r} holds arrays {sorted(keys)}; an .npz graph needs 'indptr' and 'indices' (CSR) "
                     "or 'source' and 'target' (edges)")


def csr_file_graph(path, indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray | None,
                   directed: bool) -> Graph:
    """A graph straight from CSR arrays (nodes ``0..n-1``), checked but never copied to text."""
    where = f"{str(path)!r}: "
    if indptr.ndim != 1 or indices.ndim != 1 or indptr.size < 2 or not (
            np.issubdtype(indptr.dtype, np.integer) and np.issubdtype(indices.dtype, np.integer)):
        raise UsageError(where + "indptr and indices must be 1-D integer arrays, indptr with n + 1 >= 2 entries")
    n = indptr.size - 1
    if indptr[0] != 0 or indptr[-1] != indices.size or np.any(np.diff(indptr) < 0):
        raise UsageError(where + f"indptr must rise from 0 to len(indices) = {indices.size}; "
                         "it is not a CSR row pointer")
    if indices.size and (indices.min() < 0 or indices.max() >= n):
        raise UsageError(where + f"indices must be node numbers in [0, {n}); got {indices.min()}..{indices.max()}")
    if weights is not None and (weights.shape != indices.shape or not np.issubdtype(weights.dtype, np.number)
                                or not np.all(np.isfinite(weights)) or (weights.size and weights.min() < 0)):
        raise UsageError(where + "weights must be finite numbers >= 0, one per entry of indices")
    rows = np.repeat(np.arange(n, dtype=np.int32 if n < 2**31 - 1 else np.int64), np.diff(indptr))
    same_row = rows[1:] == rows[:-1]
    if np.any(indices[1:][same_row] <= indices[:-1][same_row]):  # sorted rows, no repeated edge
        raise UsageError(where + "each row of indices must be sorted and without repeats (scipy: sort_indices() "
                         "and sum_duplicates())")
    del rows, same_row
    labels = np.arange(n, dtype=np.int64)
    if not directed:
        matrix = _symmetrised(sp.csr_array((np.ones(indices.size, np.int8) if weights is None else weights, indices,
                                            indptr), shape=(n, n)))
        indptr, indices, weights = matrix.indptr, matrix.indices, None if weights is None else matrix.data
    return csr_graph(indptr, indices, weights, labels=labels, directed=directed, name=path.name)


def _edges_to_graph(path: Path, chunks, directed: bool) -> Graph:
    """Concatenate the chunks' columns, number the labels by first appearance, build the CSR."""
    sources, targets, weights = [], [], []
    for src, dst, w in chunks:
        if pd.isna(src).any() or pd.isna(dst).any():
            raise UsageError(f"edge list {str(path)!r} has a line with a missing node; give two nodes per line")
        sources.append(src)
        targets.append(dst)
        if w is not None:
            try:
                w = pd.to_numeric(w, errors="raise").to_numpy(np.float64)
            except (ValueError, TypeError):
                raise UsageError(f"edge list {str(path)!r}: the third column must hold numeric weights") from None
            if not np.isfinite(w).all():
                raise UsageError(f"edge list {str(path)!r}: a weight is missing or not finite; "
                                 "give a number on every line")
            weights.append(w)
    if not sources or sum(len(s) for s in sources) == 0:
        raise UsageError(f"edge list {str(path)!r} has no edges; add 'source,target' lines")
    ends = _labels_array(sources, targets)
    codes, labels = pd.factorize(ends)  # first appearance, over source/target interleaved as the file reads
    del ends
    n = len(labels)
    codes = codes.astype(np.int32 if n < 2**31 - 1 else np.int64).reshape(-1, 2)
    values = np.concatenate(weights) if weights else np.ones(len(codes), np.float32)  # exact sums of repeats
    matrix = sp.coo_array((values, (codes[:, 0], codes[:, 1])), shape=(n, n)).tocsr()
    del codes, values
    return _from_matrix(matrix, _label_values(labels), directed, path.name)


def _labels_array(sources: list[np.ndarray], targets: list[np.ndarray]) -> np.ndarray:
    """Sources and targets interleaved (s0, t0, s1, t1, ...), as int64 when every label is an integer.
    Empties the two chunk lists once they are joined: held beside the joined copies they were a third
    of the loading peak."""
    src, dst = np.concatenate(sources), np.concatenate(targets)
    sources.clear()
    targets.clear()
    as_int = None
    if src.dtype.kind in "iu" and dst.dtype.kind in "iu":
        as_int = (src.astype(np.int64, copy=False), dst.astype(np.int64, copy=False))
    else:  # text labels, or integers read as text in some chunk
        src, dst = src.astype(str), dst.astype(str)
        src, dst = np.char.strip(src), np.char.strip(dst)
        try:
            as_int = (src.astype(np.int64), dst.astype(np.int64))
        except ValueError:
            pass
    if as_int is not None:
        src, dst = as_int
    out = np.empty(2 * len(src), dtype=src.dtype if as_int is not None else object)
    out[0::2], out[1::2] = src, dst
    return out


def _label_values(labels) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.dtype.kind in "iu":
        return labels.astype(np.int64, copy=False)
    out = np.empty(len(labels), dtype=object)
    out[:] = labels.tolist()
    return out
