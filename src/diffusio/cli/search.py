"""``diffusio search index | query``: find images in a folder by text or by example."""

from __future__ import annotations

import argparse
import json

from diffusio.cli.args import positive_int


def register(sub) -> None:
    p = sub.add_parser("search", help="image search with diffusion: index a folder, query it by text or example",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="Examples:\n  diffusio search index photos/ -o photos.index\n"
                              "  diffusio search query photos.index \"running shoes\" -k 20 -o hits.png\n"
                              "  diffusio search query photos.index --image example.png -k 20 --json")
    search = p.add_subparsers(dest="search_command", metavar="COMMAND")
    register_index(search)
    register_query(search)
    register_head(search)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def register_index(sub) -> None:
    p = sub.add_parser("index", help="embed every image of a folder into an index file (incremental)",
                       epilog="Example: diffusio search index photos/ -o photos.index   "
                              "(run again after adding images: only the new ones are embedded)")
    p.add_argument("folder", help="a folder of images (PNG, JPEG, ...; searched recursively)")
    p.add_argument("-o", "--output", required=True, help="the index file; an existing one is extended")
    p.add_argument("--model", default=None, help="shipped model or run folder (default fashion; an existing index "
                                                 "keeps its own)")
    p.add_argument("--rebuild", action="store_true", help="start the index afresh instead of extending it")
    p.add_argument("--bank", type=positive_int("--bank"), default=None,
                   help="draw this many images per class of the model, once per index, so text finds the classes "
                        "(default: the model's shipped class head if it has one, else 32)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_index)


def cmd_index(args) -> int:
    from diffusio.search.api import index_folder

    index, report = index_folder(args.folder, args.output, model=args.model, rebuild=args.rebuild,
                                 progress=not args.quiet, bank=args.bank)
    print(f"embedded {report.added:,} new image(s) in {report.seconds:.1f} s "
          f"({report.images_per_second:.0f} images/s); {report.already:,} already indexed; "
          f"{len(report.unreadable):,} unreadable skipped; {len(index):,} in {args.output}")
    for line in report.unreadable[:5]:
        print(f"  skipped {line}")
    return 0


def register_query(sub) -> None:
    p = sub.add_parser("query", help="the best matches of a text or an example image",
                       epilog='Example: diffusio search query photos.index "running shoes" -k 20 -o hits.png')
    p.add_argument("index", help="an index file written by 'diffusio search index'")
    p.add_argument("text", nargs="?", default=None, help='what to look for, e.g. "running shoes"')
    p.add_argument("--image", default=None, help="query by example: an image file (converted to the model's size)")
    p.add_argument("-k", type=int, default=20, help="how many hits (default 20)")  # k <= 0: the API's message
    p.add_argument("--rerank", type=int, default=None,
                   help="re-sort this many first hits by the text-conditioned denoising error (default 12; 0: none)")
    p.add_argument("--model", default=None, help="refuse unless the index was built by this model")
    p.add_argument("-o", "--output", default=None, help="write a picture of the hits with their scores (.png)")
    p.add_argument("--json", action="store_true", help="print the hits as JSON")
    p.set_defaults(func=cmd_query)


def cmd_query(args) -> int:
    from diffusio.search.api import query_index

    result = query_index(args.index, args.text, image=args.image, k=args.k, rerank=args.rerank, model=args.model,
                         picture=args.output)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    for note in result.notes:
        print(f"note: {note}")
    for hit in result.hits:
        extra = "" if hit.text_score is None else f"  (match {hit.similarity:.3f}, text {hit.text_score:+.3f})"
        print(f"{hit.rank:4d}  {hit.score:7.3f}  {hit.path}{extra}")
    print(f"{len(result.hits)} hit(s) in {result.seconds * 1000:.0f} ms"
          + (f"; picture in {args.output}" if args.output else ""))
    return 0


def register_head(sub) -> None:
    p = sub.add_parser("head", help="fit a model's class head to a set of its samples, for every later index",
                       epilog="Example: diffusio synthesize runs/mine --per-class 1000 -o samples.npz && "
                              "diffusio search head runs/mine --samples samples.npz")
    p.add_argument("model", help="shipped model or run folder (a model trained with class names)")
    p.add_argument("--samples", required=True, nargs="+", metavar="NPZ",
                   help="labelled .npz files of the model's samples (diffusio synthesize; several are pooled)")
    p.add_argument("-o", "--output", default=None,
                   help="where to write the head (default: search-head.safetensors in the model's folder, where "
                        "'diffusio search index' finds it)")
    p.add_argument("--c", type=float, default=None, help="inverse L2 strength of the logistic regression (default 30)")
    p.set_defaults(func=cmd_head)


def cmd_head(args) -> int:
    from diffusio.search.head import fit_head_from_samples

    path, meta = fit_head_from_samples(args.model, args.samples, args.output, c=args.c)
    print(f"class head of {args.model} fitted to {meta['per_class']:,}+ samples per class "
          f"(accuracy on its samples {meta['accuracy_on_samples']:.3f}); written to {path}")
    return 0
