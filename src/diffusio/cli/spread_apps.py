"""``diffusio spread influence | immunize | fit | recommend | debtrank | spatial``: the applications."""

from __future__ import annotations

import json
import time
from pathlib import Path

from diffusio.cli.args import non_negative_float, optional_output, positive_int_at_most, seed_int
from diffusio.cli.cluster import add_cluster_options, cluster
from diffusio.cli.args import positive_int as _positive_int
from diffusio.errors import UsageError

GRAPH_HELP = ("dataset name (see 'diffusio spread datasets'), a generator such as barabasi-albert:n=10000,m=3, "
              "or a graph file: a CSV/TSV edge list, .npz (CSR arrays or edge columns) or .parquet (read in chunks)")


def _emit(args, report: dict, lines: list[str]) -> int:
    if args.json:
        print(json.dumps(report, indent=2, default=float))
    else:
        print("\n".join(lines))
    return 0


def _ints(text: str, flag: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"{flag} takes integers separated by commas, got {text!r}") from None
    if not values:
        raise UsageError(f"{flag} is empty; give e.g. {flag} 0,10,20")
    return values


def _influence(args) -> int:
    from diffusio import spread

    graph = spread.as_graph(args.graph, directed=True if args.directed else None)
    if args.model == "ic":
        model = spread.IndependentCascade(p=0.1 if args.p is None else args.p)
    elif args.p is not None:
        raise UsageError("--p does not apply to --model lt (weights are 1/in-degree, thresholds uniform)")
    else:
        model = spread.LinearThreshold()
    start = time.perf_counter()
    with cluster(args) as client:
        table = spread.influence_maximization(graph, model, args.k, method=args.method, epsilon=args.epsilon,
                                              trials=args.trials, seed=args.seed, eval_trials=args.eval_trials,
                                              client=client)
    seconds = time.perf_counter() - start
    final = table["spread"].iloc[-1]
    report = {"graph": graph.name or args.graph, "nodes": graph.n_nodes, "model": repr(model), "k": args.k,
              "method": args.method, "seeds": table["node"].tolist(), "expected_spread": final,
              "seconds": round(seconds, 3)}
    return _emit(args, report, [f"{args.method} on {report['graph']} ({graph.n_nodes} nodes), {model!r}, k={args.k}: "
                                f"{seconds:.2f} s",
                                f"  seeds: {', '.join(str(x) for x in report['seeds'])}",
                                f"  expected spread ({args.eval_trials} trials): {final:.2f}"])


def _immunize(args) -> int:
    from diffusio import spread

    image = optional_output(args.output, ".png")
    graph = spread.as_graph(args.graph)
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    if not strategies:  # found by the fuzz: an empty list drew an empty chart and exited 0
        raise UsageError("--strategies is empty; give e.g. --strategies random,degree,acquaintance,betweenness")
    budgets = _ints(args.budgets, "--budgets")
    with cluster(args) as client:
        table = spread.immunization_curve(graph, budgets, strategies=strategies,
                                          model=spread.SIR(beta=args.beta, gamma=args.gamma), trials=args.trials,
                                          seed=args.seed, betweenness_samples=args.betweenness_samples, client=client)
    if image is not None:
        spread.plot_immunization(table, image, title=f"SIR on {graph.name or args.graph}: outbreak vs budget")
    lines = [f"{'strategy':<13} {'budget':>6}  outbreak share  95% CI"]
    lines += [f"{r.strategy:<13} {r.budget:>6}  {r.mean:14.4f}  [{r.lower:.4f}, {r.upper:.4f}]"
              for r in table.itertuples()]
    lines += [f"  wrote {image}"] if image else []
    return _emit(args, {"table": table.to_dict(orient="records"), "plot": str(image) if image else None}, lines)


def _read_series(text: str) -> list[float]:
    path = Path(text)
    if path.is_file():
        raw = path.read_text().replace("\n", ",")
    elif "," in text or text.replace(".", "", 1).isdigit():
        raw = text
    else:
        raise UsageError(f"--series {text!r} is neither a file nor comma-separated numbers")
    try:
        return [float(x) for x in raw.split(",") if x.strip()]
    except ValueError:
        raise UsageError("--series must hold numbers only (one per line or comma-separated)") from None


def _fit(args) -> int:
    from diffusio import spread

    image = optional_output(args.output, ".png")
    series = _read_series(args.series)
    if args.model == "bass":
        fit = spread.fit_bass(series)
    else:
        if args.population is None:
            raise UsageError("--model sir needs --population N")
        fit = spread.fit_sir(series, args.population, dt=args.dt)
    if image is not None:
        spread.plot_fit(fit, image, horizon=args.horizon)
    params = fit.params.reset_index().to_dict(orient="records")
    lines = [f"{args.model} fit to {len(series)} points, RMSE {fit.rmse:.4g}"]
    lines += [f"  {r['param']:>5} = {r['estimate']:.6g}   95% CI [{r['lower']:.6g}, {r['upper']:.6g}]   "
              f"(start {r['start']:.6g})" for r in params]
    lines += [f"  wrote {image}"] if image else []
    return _emit(args, {"model": args.model, "params": params, "rmse": fit.rmse,
                        "forecast": fit.forecast(args.horizon or 2 * len(series)).tolist()}, lines)


def _recommend(args) -> int:
    from diffusio import spread

    links, items = spread.read_links(args.data)
    if args.eval:
        train, test = spread.split_links(links, args.test_fraction, seed=args.seed)
        report = spread.evaluate(train, test, args.method, lam=args.lam, length=args.length, items=items)
        return _emit(args, report, [f"{args.method} (lambda={report['lam']:g}) on {args.data}: "
                                    f"{report['test_links']} test links, L={report['length']}"] +
                     [f"  {key:>15}: {report[key]:.4f}" for key in
                      ("ranking_score", "precision", "recall", "personalization", "novelty", "mean_degree")])
    table = spread.recommend(links, args.method, lam=args.lam, length=args.length)
    if args.user is not None:
        table = table[table["user"].astype(str) == args.user]
        if table.empty:
            raise UsageError(f"--user {args.user!r} is not in the data")
    return _emit(args, {"recommendations": table.to_dict(orient="records")},
                 [table.head(200).to_string(index=False)])


def _debtrank(args) -> int:
    from diffusio import spread

    image = optional_output(args.output, ".png")
    matrix, banks = spread.exposure_matrix(args.exposures)
    path = Path(args.equity)
    if path.is_file():
        from diffusio._io import read_csv

        frame = read_csv(path, fix="give a CSV with bank,equity columns, or one number per bank",
                         skipinitialspace=True)
        if {"bank", "equity"} <= set(frame.columns):
            lookup = dict(zip(frame["bank"].astype(str), frame["equity"]))
            equity = {b: lookup.get(str(b), float("nan")) for b in banks.tolist()}
            missing = [b for b, e in equity.items() if e != e]
            if missing:
                raise UsageError(f"--equity has no row for bank {missing[0]!r}")
        else:
            equity = frame.iloc[:, -1].to_numpy()
    else:
        equity = _read_series(args.equity)
    table = spread.debtrank(matrix, equity, shock=args.shock, banks=banks)
    if image is not None:
        spread.plot_debtrank(table, image)
    lines = [f"{'bank':>10}  DebtRank R  distressed  defaults"]
    lines += [f"{str(r.bank):>10}  {r.debtrank:10.4f}  {r.distressed:10d}  {r.defaults:8d}" for r in table.itertuples()]
    lines += [f"  wrote {image}"] if image else []
    return _emit(args, {"table": table.to_dict(orient="records")}, lines)


def _spatial(args) -> int:
    from diffusio import spread

    image = optional_output(args.output, ".png")
    graph, xy = spread.spatial_graph(args.graph)
    at = _ints(args.at, "--at")
    steps = max(args.steps, max(at))
    levels = spread.spatial_spread(graph, xy, _ints(args.seeds, "--seeds"), steps=steps, rate=args.rate,
                                   decay=args.decay)
    if image is not None:
        spread.plot_spatial(graph, xy, levels, image, at=at, title=f"spread on {graph.name}")
    mean = {int(t): float(levels[t].mean()) for t in at}
    lines = [f"{graph.name}: {graph.n_nodes} nodes, {steps} steps"] + [f"  step {t:>4}: mean level {v:.4f}"
                                                                     for t, v in mean.items()]
    lines += [f"  wrote {image}"] if image else []
    return _emit(args, {"graph": graph.name, "mean_level": mean, "plot": str(image) if image else None}, lines)


def _register_influence(commands, fmt) -> None:
    c = commands.add_parser("influence", formatter_class=fmt, help="choose k seeds maximising IC/LT spread",
                            description="Influence maximisation (IMM, CELF, degree discount, degree).",
                            epilog="Example:\n  diffusio spread influence --graph karate --model ic --p 0.05 -k 5 "
                                   "--method imm")
    c.add_argument("--graph", required=True, help=GRAPH_HELP)
    c.add_argument("--directed", action="store_true")
    c.add_argument("--model", choices=["ic", "lt"], default="ic")
    c.add_argument("--p", type=float, help="ic: activation probability (default 0.1)")
    c.add_argument("-k", type=_positive_int("-k"), required=True, help="number of seeds")
    c.add_argument("--method", choices=["imm", "celf", "degree-discount", "degree"], default="imm")
    c.add_argument("--epsilon", type=non_negative_float("--epsilon", 1), default=0.1, help="imm: approximation slack")
    c.add_argument("--trials", type=_positive_int("--trials"), default=200, help="celf: Monte Carlo trials")
    c.add_argument("--eval-trials", type=_positive_int("--eval-trials"), default=1000)
    c.add_argument("--seed", type=seed_int, default=0)
    add_cluster_options(c, threads=False)
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=_influence)


def _register_immunize(commands, fmt) -> None:
    m = commands.add_parser("immunize", formatter_class=fmt, help="SIR outbreak size against immunisation budget",
                            description="Immunise nodes by strategy and simulate SIR outbreaks.",
                            epilog="Example:\n  diffusio spread immunize --graph karate --budgets 0,2,4,8 "
                                   "--beta 0.3 --gamma 0.2 -o immunize.png")
    m.add_argument("--graph", required=True)
    m.add_argument("--strategies", default="random,degree,acquaintance,betweenness")
    m.add_argument("--budgets", required=True, help="comma-separated numbers of immunised nodes")
    m.add_argument("--beta", type=float, default=0.1)
    m.add_argument("--gamma", type=float, default=0.1)
    m.add_argument("--trials", type=_positive_int("--trials"), default=200)
    m.add_argument("--betweenness-samples", type=_positive_int("--betweenness-samples"), default=None)
    m.add_argument("--seed", type=seed_int, default=0)
    m.add_argument("-o", "--output", help="PNG of outbreak share against budget with 95%% bands")
    add_cluster_options(m, threads=False)
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=_immunize)


def _register_fit(commands, fmt) -> None:
    f = commands.add_parser("fit", formatter_class=fmt, help="fit Bass (p, q, m) or SIR (beta, gamma, I0)",
                            description="Fit a diffusion curve to a per-period series and forecast it.",
                            epilog="Example:\n  diffusio spread fit --model bass --series 96,195,238,380,1045,1230,"
                                   "1267,1828,1586,1673,1800,1580,1500 -o bass.png")
    f.add_argument("--model", choices=["bass", "sir"], default="bass")
    f.add_argument("--series", required=True, help="file (one number a line) or comma-separated numbers")
    f.add_argument("--population", type=non_negative_float("--population"), help="sir: population size N")
    f.add_argument("--dt", type=non_negative_float("--dt"), default=1.0, help="sir: period length")
    f.add_argument("--horizon", type=positive_int_at_most("--horizon", 10 ** 6), default=None,
                   help="periods to forecast (at most 10^6)")
    f.add_argument("-o", "--output", help="PNG of data, fit and forecast")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=_fit)


def _register_recommend(commands, fmt) -> None:
    r = commands.add_parser("recommend", formatter_class=fmt, help="ProbS / HeatS / hybrid recommendation",
                            description="Diffusion-based recommendation on the user-item bipartite graph.",
                            epilog="Example:\n  diffusio spread recommend --data ml-100k --method hybrid --lam 0.2 "
                                   "--eval")
    r.add_argument("--data", default="ml-100k", help="ml-100k or a CSV with user,item columns")
    r.add_argument("--method", choices=["probs", "heats", "hybrid"], default="probs")
    r.add_argument("--lam", type=non_negative_float("--lam", 1), help="hybrid: 1 = ProbS, 0 = HeatS")
    r.add_argument("--length", type=_positive_int("--length"), default=50, help="recommendation list length L")
    r.add_argument("--eval", action="store_true", help="random 90/10 split and accuracy / diversity metrics")
    r.add_argument("--test-fraction", type=non_negative_float("--test-fraction", 1), default=0.1)
    r.add_argument("--user", help="show one user's list")
    r.add_argument("--seed", type=seed_int, default=0)
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=_recommend)


def _register_debtrank(commands, fmt) -> None:
    b = commands.add_parser("debtrank", formatter_class=fmt, help="DebtRank of each bank in an exposure network",
                            description="DebtRank (Battiston et al. 2012) with each bank as the initial default.",
                            epilog="Example:\n  diffusio spread debtrank --exposures exposures.csv --equity "
                                   "equity.csv -o debtrank.png")
    b.add_argument("--exposures", required=True, help="CSV: lender,borrower,amount edge list or square matrix")
    b.add_argument("--equity", required=True, help="CSV (bank,equity) or comma-separated values in bank order")
    b.add_argument("--shock", type=float, default=1.0, help="initial distress of the starting bank (0, 1]")
    b.add_argument("-o", "--output", help="PNG bar chart")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=_debtrank)


def _register_spatial(commands, fmt) -> None:
    s = commands.add_parser("spatial", formatter_class=fmt, help="development spreading over roads or a grid",
                            description="Distance-decayed spread of development over a road network or grid.",
                            epilog="Example:\n  diffusio spread spatial --graph minnesota --seeds 0 --steps 100 "
                                   "--at 0,25,100 -o map.png")
    s.add_argument("--graph", default="minnesota", help="minnesota or grid:ROWSxCOLS")
    s.add_argument("--seeds", required=True, help="comma-separated node indices where development starts")
    s.add_argument("--steps", type=_positive_int("--steps"), default=50)
    s.add_argument("--rate", type=float, default=0.5)
    s.add_argument("--decay", type=float, default=1.0, help="length scale of distance decay")
    s.add_argument("--at", default="0,10,50", help="steps to draw")
    s.add_argument("-o", "--output", help="PNG maps at the --at steps")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_spatial)


def register_applications(commands, fmt) -> None:
    """The application subcommands of ``diffusio spread``."""
    for register in (_register_influence, _register_immunize, _register_fit, _register_recommend, _register_debtrank, _register_spatial):
        register(commands, fmt)
