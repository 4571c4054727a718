"""The cluster flags of the spread commands: where the Monte Carlo runs (docs/scale.md)."""

from __future__ import annotations

from diffusio.cli.args import positive_int


def add_cluster_options(p, threads: bool = True) -> None:
    """--workers N (a local Dask cluster) or --scheduler ADDRESS; and --threads for local runs."""
    if threads:
        p.add_argument("--threads", type=positive_int("--threads"), default=None,
                       help="threads on this machine (default: all cores)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=positive_int("--workers"), default=None,
                       help="run the trials on a local Dask cluster of this many worker processes")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="run the trials on the Dask cluster of this scheduler, e.g. tcp://host:8786 "
                            "(same result as locally; see docs/scale.md)")


def cluster(args):
    """The Dask client that --scheduler or --workers asks for, or None (local threads)."""
    import contextlib

    if args.scheduler is None and args.workers is None:
        return contextlib.nullcontext(None)
    from diffusio.cluster import connect

    return connect(args.scheduler, args.workers)
