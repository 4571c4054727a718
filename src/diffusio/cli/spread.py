"""``diffusio spread simulate | datasets`` (the applications are in :mod:`spread_apps`): parse, call
diffusio.spread, save, print."""

from __future__ import annotations

import argparse
import json
import time

from diffusio.cli.args import optional_output, seed_int
from diffusio.cli.args import positive_int as _positive_int
from diffusio.cli.cluster import add_cluster_options, cluster
from diffusio.cli.spread_apps import GRAPH_HELP, register_applications
from diffusio.errors import UsageError
from diffusio.spread.registry import NAMES as MODELS


def _build_model(args):
    from diffusio.spread.registry import all_parameters, build_model

    # parameters without a flag (lt's per-edge weights) stay at the model's default
    return build_model(args.model, "--", **{name: getattr(args, name, None) for name in all_parameters()})


def _parse_seeds(text: str | None, graph):
    if text is None:
        return None
    tokens = [token.strip() for token in text.split(",") if token.strip()]
    if not tokens:
        raise UsageError("--seeds is empty; give node labels separated by commas, e.g. --seeds 0,33")
    if graph.labels.dtype.kind in "iu":
        try:
            return [int(token) for token in tokens]
        except ValueError:
            raise UsageError(f"--seeds {text!r}: this graph's nodes are integers; e.g. --seeds 0,33") from None
    return tokens


def _check_curve_memory(args, model) -> None:
    """The per-step counts of every trial are kept: refuse a --max-steps they cannot fit in (found by the
    fuzz: --max-steps 1000000000 was a MemoryError traceback)."""
    from diffusio._resources import check_memory

    if args.max_steps is not None:
        check_memory(4.0 * args.trials * (args.max_steps + 1) * max(len(model.states), 1),
                     f"--trials {args.trials} x --max-steps {args.max_steps}", "lower --max-steps or --trials")


def _simulate(args) -> int:
    from diffusio import spread
    from diffusio.spread.plot import plot_curves

    image = optional_output(args.output, ".png")
    model = _build_model(args)
    _check_curve_memory(args, model)
    graph = spread.as_graph(args.graph, directed=True if args.directed else None)
    seeds = _parse_seeds(args.seeds, graph)
    start = time.perf_counter()
    with cluster(args) as client:
        result = spread.simulate(graph, model, seeds=seeds, trials=args.trials, seed=args.seed,
                                 max_steps=args.max_steps, workers=args.threads, client=client,
                                 progress=client is not None and not args.json)
    seconds = time.perf_counter() - start
    last = result.summary().iloc[-1]
    if image is not None:
        plot_curves(result, image)
    report = {
        "graph": graph.name or args.graph, "nodes": graph.n_nodes, "edges": graph.n_edges, "model": repr(model),
        "trials": args.trials, "seed": args.seed, "steps": int(last["step"]), "seconds": round(seconds, 4),
        "hit_max_steps": result.hit_max_steps, "cut_short": result.cut_short, "warnings": result.warnings(),
        "final": {state: {"mean": float(last[f"{state}_mean"]), "lower": float(last[f"{state}_lower"]),
                          "upper": float(last[f"{state}_upper"])} for state in result.states},
        "plot": str(image) if image else None,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{report['model']} on {report['graph']} ({graph.n_nodes} nodes, {graph.n_edges} edges): "
          f"{args.trials} trials in {seconds:.2f} s, {report['steps']} steps")
    for state, stats in report["final"].items():
        print(f"  final {state:>10}: {stats['mean']:10.2f}   95% CI [{stats['lower']:.2f}, {stats['upper']:.2f}]")
    if image is not None:
        print(f"  wrote {image}")
    return 0


def _register_sweep(commands, fmt) -> None:
    w = commands.add_parser(
        "sweep", formatter_class=fmt, help="simulate every point of a parameter grid; one table of final states",
        description="One simulation per combination of the --grid values (same seed at every point), with the "
                    "mean final count of each state and its 95%% confidence interval.",
        epilog="Example:\n  diffusio spread sweep --graph karate --model sir --grid beta=0.02,0.05,0.1 "
               "--grid gamma=0.1,0.2 --seeds 0 --trials 500 -o sweep.csv")
    w.add_argument("--graph", required=True, help=GRAPH_HELP)
    w.add_argument("--directed", action="store_true")
    w.add_argument("--model", required=True, choices=list(MODELS), metavar="MODEL", help=f"one of: {', '.join(MODELS)}")
    w.add_argument("--grid", action="append", required=True, metavar="NAME=V1,V2,...",
                   help="a model parameter and its values; repeat for more parameters")
    w.add_argument("--seeds", help="comma-separated node labels to start from (default: a random node per trial)")
    w.add_argument("--trials", type=_positive_int("--trials"), default=200)
    w.add_argument("--seed", type=seed_int, default=0)
    w.add_argument("--max-steps", type=_positive_int("--max-steps"), default=None)
    add_cluster_options(w)
    w.add_argument("-o", "--output", help=".csv for the table")
    w.add_argument("--json", action="store_true", help="print the table as JSON")
    w.set_defaults(func=_sweep)


def parse_grid(items: list[str]) -> dict[str, list[float]]:
    """``["beta=0.1,0.2", "gamma=0.1"]`` -> ``{"beta": [0.1, 0.2], "gamma": [0.1]}``."""
    grid = {}
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip().lstrip("-").replace("-", "_")
        try:
            numbers = [float(v) for v in values.split(",") if v.strip()]
        except ValueError:
            numbers = []
        if not sep or not name or not numbers:
            raise UsageError(f"--grid {item!r}: write a parameter and its values, e.g. --grid beta=0.02,0.05")
        if name in grid:
            raise UsageError(f"--grid names {name} twice; give all its values in one --grid")
        grid[name] = numbers
    return grid


def _sweep(args) -> int:
    import functools

    from diffusio import spread
    from diffusio.spread.registry import build_model

    out = optional_output(args.output, ".csv")
    grid = parse_grid(args.grid)
    graph = spread.as_graph(args.graph, directed=True if args.directed else None)
    seeds = _parse_seeds(args.seeds, graph)
    factory = functools.partial(build_model, args.model, "--")
    _check_curve_memory(args, factory(**{k: v[0] for k, v in grid.items()}))  # a wrong parameter fails before any work
    with cluster(args) as client:
        table = spread.sweep(graph, factory, grid, seeds, trials=args.trials, seed=args.seed,
                             max_steps=args.max_steps, workers=args.threads, client=client, progress=not args.json)
    if out is not None:
        from diffusio._io import atomic_path

        with atomic_path(out) as tmp:
            table.to_csv(tmp, index=False)
    if args.json:
        print(table.to_json(orient="records", indent=2))
    else:
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        if out is not None:
            print(f"wrote {out}")
    return 0


def _datasets(args) -> int:
    from diffusio.spread import list_datasets

    table = list_datasets()
    if args.json:
        print(json.dumps(table.to_dict(orient="records"), indent=2))
        return 0
    width = max(len(name) for name in table["name"])
    for row in table.itertuples():
        print(f"{row.name:<{width}}  {row.description}")
    return 0


def _choose_a_subcommand(group, commands) -> int:
    group.print_help()
    raise UsageError(f"choose a subcommand: {', '.join(commands.choices)}")


def register(sub) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    group = sub.add_parser("spread", help="simulate diffusion on networks (cascades, epidemics, adoption, opinions)",
                           formatter_class=fmt, description="Diffusion on networks.",
                           epilog="Examples:\n  diffusio spread simulate --graph karate --model sir --beta 0.05 "
                                  "--gamma 0.1 --trials 1000 --seed 0 -o curve.png\n  diffusio spread datasets")
    commands = group.add_subparsers(dest="spread_command", metavar="SUBCOMMAND")
    group.set_defaults(func=lambda args: _choose_a_subcommand(group, commands))

    p = commands.add_parser(
        "simulate", formatter_class=fmt, help="Monte Carlo trials of a model; plot mean curves with 95%% bands",
        description="Run many seeded trials of a spread model on a graph, print the final mean of each state "
                    "with its 95%% confidence interval and optionally draw the mean curves.",
        epilog="Examples:\n  diffusio spread simulate --graph karate --model sir --beta 0.05 --gamma 0.1 "
               "--trials 1000 --seed 0 -o curve.png\n"
               "  diffusio spread simulate --graph edges.csv --model ic --p 0.1 --seeds a,b --json\n"
               "  diffusio spread simulate --graph barabasi-albert:n=10000,m=3,seed=0 --model lt --trials 200\n"
               f"Models: {', '.join(MODELS)}")
    p.add_argument("--graph", required=True, help=GRAPH_HELP)
    p.add_argument("--directed", action="store_true", help="read an edge list as one-way edges")
    p.add_argument("--model", required=True, choices=list(MODELS), metavar="MODEL",
                   help=f"one of: {', '.join(MODELS)} (-ct: continuous time)")
    p.add_argument("--p", type=float, help="ic: activation probability; bass: innovation")
    p.add_argument("--q", type=float, help="bass: imitation")
    p.add_argument("--beta", type=float, help="epidemics: transmission probability (rate for -ct)")
    p.add_argument("--gamma", type=float, help="epidemics: recovery probability (rate for -ct)")
    p.add_argument("--sigma", type=float, help="seir: exposed -> infectious probability")
    p.add_argument("--threshold", type=float, help="lt / threshold: activation threshold of every node")
    p.add_argument("--initial-yes", type=float, help="opinion models without seeds: share starting 'yes'")
    p.add_argument("--dt", type=float, help="continuous-time models: spacing of the recorded curve")
    p.add_argument("--seeds", help="comma-separated node labels to start from (default: a random node per trial)")
    p.add_argument("--trials", type=_positive_int("--trials"), default=1000)
    p.add_argument("--seed", type=seed_int, default=0, help="random seed (same seed, same result)")
    p.add_argument("--max-steps", type=_positive_int("--max-steps"), default=None,
                   help="stop each trial after this many steps (default: run cascades, SIR and SEIR to their end; "
                        "500 for models that may never end)")
    add_cluster_options(p)
    p.add_argument("-o", "--output", help="PNG file for the mean curves with 95%% bands")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_simulate)
    _register_sweep(commands, fmt)

    d = commands.add_parser("datasets", formatter_class=fmt, help="list built-in graphs and random generators",
                            description="Graphs usable as --graph without any download.",
                            epilog="Example:\n  diffusio spread datasets\n  diffusio spread datasets --json")
    d.add_argument("--json", action="store_true", help="print as JSON")
    d.set_defaults(func=_datasets)
    register_applications(commands, fmt)
