"""``diffusio spread simulate | datasets``: parse, call diffusio.spread, save, print."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from diffusio.errors import UsageError

# CLI model name -> (class name, parameters it accepts)
MODELS = {
    "ic": ("IndependentCascade", {"p"}),
    "lt": ("LinearThreshold", {"threshold"}),
    "si": ("SI", {"beta"}),
    "sis": ("SIS", {"beta", "gamma"}),
    "sir": ("SIR", {"beta", "gamma"}),
    "seir": ("SEIR", {"beta", "gamma", "sigma"}),
    "sir-ct": ("ContinuousSIR", {"beta", "gamma", "dt"}),
    "sis-ct": ("ContinuousSIS", {"beta", "gamma", "dt"}),
    "bass": ("Bass", {"p", "q"}),
    "voter": ("Voter", {"initial_yes"}),
    "majority": ("MajorityRule", {"initial_yes"}),
    "threshold": ("ThresholdOpinion", {"threshold", "initial_yes"}),
}
_PARAMS = ("p", "q", "beta", "gamma", "sigma", "threshold", "initial_yes", "dt")


def _positive_int(name):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}")
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name} must be >= 1, got {value}")
        return value
    return parse


def _build_model(args):
    from diffusio import spread

    class_name, accepted = MODELS[args.model]
    given = {name: getattr(args, name) for name in _PARAMS if getattr(args, name) is not None}
    extra = sorted(set(given) - accepted)
    if extra:
        flags = ", ".join("--" + name.replace("_", "-") for name in extra)
        allowed = ", ".join("--" + name.replace("_", "-") for name in sorted(accepted))
        raise UsageError(f"{flags} does not apply to --model {args.model}; it takes {allowed}")
    if args.model == "lt" and "threshold" in given:
        given["thresholds"] = given.pop("threshold")
    return getattr(spread, class_name)(**given)


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


def _check_output(path: str | None, suffix: str) -> Path | None:
    if path is None:
        return None
    out = Path(path)
    if out.suffix.lower() != suffix:
        raise UsageError(f"{path!r} must end in {suffix}; e.g. -o curve{suffix}")
    if not out.parent.is_dir():
        raise UsageError(f"folder {str(out.parent)!r} does not exist; create it or choose another -o path")
    return out


def _simulate(args) -> int:
    from diffusio import spread
    from diffusio.spread.plot import plot_curves

    image = _check_output(args.output, ".png")
    model = _build_model(args)
    graph = spread.as_graph(args.graph, directed=True if args.directed else None)
    seeds = _parse_seeds(args.seeds, graph)
    start = time.perf_counter()
    result = spread.simulate(graph, model, seeds=seeds, trials=args.trials, seed=args.seed,
                             max_steps=args.max_steps, workers=args.workers)
    seconds = time.perf_counter() - start
    last = result.summary().iloc[-1]
    if image is not None:
        plot_curves(result, image)
    report = {
        "graph": graph.name or args.graph, "nodes": graph.n_nodes, "edges": graph.n_edges, "model": repr(model),
        "trials": args.trials, "seed": args.seed, "steps": int(last["step"]), "seconds": round(seconds, 4),
        "hit_max_steps": result.hit_max_steps,
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
    if result.hit_max_steps:
        print(f"  note: {result.hit_max_steps} trials were still changing at --max-steps {args.max_steps}")
    if image is not None:
        print(f"  wrote {image}")
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


def register(sub) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    group = sub.add_parser("spread", help="simulate diffusion on networks (cascades, epidemics, adoption, opinions)",
                           formatter_class=fmt, description="Diffusion on networks.",
                           epilog="Examples:\n  diffusio spread simulate --graph karate --model sir --beta 0.05 "
                                  "--gamma 0.1 --trials 1000 --seed 0 -o curve.png\n  diffusio spread datasets")
    commands = group.add_subparsers(dest="spread_command", metavar="SUBCOMMAND")
    group.set_defaults(func=lambda args: (group.print_help(), 2)[1])

    p = commands.add_parser(
        "simulate", formatter_class=fmt, help="Monte Carlo trials of a model; plot mean curves with 95% bands",
        description="Run many seeded trials of a spread model on a graph, print the final mean of each state "
                    "with its 95%% confidence interval and optionally draw the mean curves.",
        epilog="Examples:\n  diffusio spread simulate --graph karate --model sir --beta 0.05 --gamma 0.1 "
               "--trials 1000 --seed 0 -o curve.png\n"
               "  diffusio spread simulate --graph edges.csv --model ic --p 0.1 --seeds a,b --json\n"
               "  diffusio spread simulate --graph barabasi-albert:n=10000,m=3,seed=0 --model lt --trials 200\n"
               f"Models: {', '.join(MODELS)}")
    p.add_argument("--graph", required=True, help="dataset name (see 'diffusio spread datasets') or CSV/TSV edge list")
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
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same result)")
    p.add_argument("--max-steps", type=_positive_int("--max-steps"), default=500)
    p.add_argument("--workers", type=_positive_int("--workers"), default=None, help="threads (default: all cores)")
    p.add_argument("-o", "--output", help="PNG file for the mean curves with 95%% bands")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_simulate)

    d = commands.add_parser("datasets", formatter_class=fmt, help="list built-in graphs and random generators",
                            description="Graphs usable as --graph without any download.",
                            epilog="Example:\n  diffusio spread datasets\n  diffusio spread datasets --json")
    d.add_argument("--json", action="store_true", help="print as JSON")
    d.set_defaults(func=_datasets)


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - convenience for `python -m`
    parser = argparse.ArgumentParser(prog="diffusio")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UsageError as err:
        print(f"diffusio: error: {err}", file=sys.stderr)
        return 2
