"""Issue 23: what loading a big graph from a file costs, for each file kind `--graph` reads.

    python bench/graph_files.py [--n 1000000] [--degree 10] [--dir DIR]

Generates bench/spread_10m.py's Chung-Lu graph (numpy only), writes its undirected edges once each
as a CSV edge list, an ``.npz`` of edge columns, a ``.parquet`` file and an ``.npz`` of CSR arrays,
then loads each with ``spread.as_graph`` in a fresh process and prints the load time, the graph's
memory, the peak resident memory above the process's start while loading (VmHWM), and both per
stored CSR entry (each undirected edge is stored both ways).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from spread_10m import chung_lu  # noqa: E402
from spread_scale import peak_mb, reset_peak, rss_mb  # noqa: E402


def write_files(n: int, degree: float, folder: Path) -> dict[str, Path]:
    import pandas as pd

    indptr, indices = chung_lu(n, degree)
    rows = np.repeat(np.arange(n, dtype=np.int32), np.diff(indptr))
    once = rows < indices  # each undirected edge once
    edges = pd.DataFrame({"source": rows[once], "target": indices[once]})
    files = {"csv": folder / "edges.csv", "npz edges": folder / "edges.npz", "parquet": folder / "edges.parquet",
             "npz csr": folder / "csr.npz"}
    edges.to_csv(files["csv"], index=False)
    np.savez(files["npz edges"], source=edges.source.to_numpy(), target=edges.target.to_numpy())
    edges.to_parquet(files["parquet"], row_group_size=1_000_000)
    np.savez(files["npz csr"], indptr=indptr, indices=indices)
    return files


def load(path: str) -> dict:
    from diffusio import spread

    reset_peak(), (base := rss_mb())
    start = time.perf_counter()
    graph = spread.as_graph(path)
    entries = int(graph.indices.size)
    return {"load_s": round(time.perf_counter() - start, 2), "graph_mb": round(graph.nbytes / 2**20, 1),
            "peak_mb": round(peak_mb() - base, 1), "entries": entries,
            "graph_bytes_per_entry": round(graph.nbytes / entries, 2),
            "peak_bytes_per_entry": round((peak_mb() - base) * 2**20 / entries, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--degree", type=float, default=10)
    ap.add_argument("--dir", help="keep the files here (default: a temporary folder)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(load(args.child)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.dir or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        files = write_files(args.n, args.degree, folder)
        print(f"wrote {len(files)} files in {time.perf_counter() - start:.1f} s")
        print("| file | size (MB) | load (s) | graph (MB) | peak while loading (MB) | graph bytes / entry | "
              "peak bytes / entry |\n|---|---|---|---|---|---|---|")
        for kind, path in files.items():
            out = subprocess.run([sys.executable, __file__, "--child", str(path)], capture_output=True, text=True,
                                 check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"| {kind} | {path.stat().st_size / 2**20:.0f} | {row['load_s']} | {row['graph_mb']} | "
                  f"{row['peak_mb']} | {row['graph_bytes_per_entry']} | {row['peak_bytes_per_entry']} |", flush=True)
        print(f"entries (each undirected edge both ways): {row['entries']:,}")


if __name__ == "__main__":
    main()
