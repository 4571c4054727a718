"""Spread applications against closed forms, peers and published figures (fast: tiny graphs, few trials)."""

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from diffusio import spread
from diffusio.errors import UsageError
from diffusio.spread.apps.rrsets import IC, LT, RRSampler, max_coverage


# ---------------------------------------------------------------- recommendation
def test_probs_matches_hand_computed_resource_allocation():
    a = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 1, 1, 1]])
    scores = spread.diffusion_scores(a, 1.0)
    # ProbS conserves each user's resource: row sums equal the user's degree
    assert np.allclose(scores.sum(axis=1), a.sum(axis=1))
    # item 3 reaches user 0 only through item 1 (k=3) -> user 2 (k=3) -> item 3: 1/3 * 1/3
    assert scores[0, 3] == pytest.approx(1 / 9)
    # HeatS averages: a fully collected neighbourhood gives temperature 1 to every reachable item
    heat = spread.diffusion_scores(np.ones((2, 3)), 0.0)
    assert np.allclose(heat, 1.0)


def test_hybrid_interpolates_and_rejects_bad_lambda():
    links = pd.DataFrame({"user": [1, 1, 2, 2, 3, 3], "item": [1, 2, 2, 3, 1, 3]})
    with pytest.raises(UsageError, match="lam"):
        spread.recommend(links, "hybrid", lam=1.5)
    with pytest.raises(UsageError, match="lam"):
        spread.recommend(links, "hybrid")
    a = np.array([[1, 1, 0], [0, 1, 1], [1, 0, 1]])
    assert np.allclose(spread.diffusion_scores(a, 1.0), spread.diffusion_scores(a, 1.0 - 0.0))
    assert not np.allclose(spread.diffusion_scores(np.array([[1, 1, 0], [0, 1, 0], [0, 1, 1]]), 0.5),
                           spread.diffusion_scores(np.array([[1, 1, 0], [0, 1, 0], [0, 1, 1]]), 1.0))


def test_movielens_probs_reproduces_published_ranking_score():
    pytest.importorskip("recbole")
    links = spread.load_movielens()
    assert len(links) == 82520  # Zhou et al. 2007: 82,520 links with rating >= 3
    train, test = spread.split_links(links, 0.1, seed=0)
    probs = spread.evaluate(train, test, "probs", length=50, items=spread.movielens_items())
    assert probs["ranking_score"] == pytest.approx(0.106, abs=0.004)  # Phys. Rev. E 76, 046115 (2007)
    heats = spread.evaluate(train, test, "heats", length=50, items=spread.movielens_items())
    # PNAS 2010: HeatS is less accurate but far more personal and novel than ProbS
    assert heats["ranking_score"] > probs["ranking_score"]
    assert heats["personalization"] > probs["personalization"] and heats["novelty"] > probs["novelty"]


def test_split_is_seeded():
    links = pd.DataFrame({"user": np.arange(50) % 7, "item": np.arange(50)})
    a1, b1 = spread.split_links(links, 0.2, seed=3)
    a2, b2 = spread.split_links(links, 0.2, seed=3)
    assert a1.equals(a2) and b1.equals(b2) and len(b1) == 10


# ---------------------------------------------------------------- fitting
def test_bass_fit_recovers_known_parameters_from_noisy_sales():
    truth = {"p": 0.012, "q": 0.42, "m": 50000}
    sales = spread.bass_sales(truth["p"], truth["q"], truth["m"], 16)
    noisy = sales * (1 + np.random.default_rng(0).normal(0, 0.03, sales.size))
    fit = spread.fit_bass(noisy)
    for name, value in truth.items():
        row = fit.params.loc[name]
        assert row["lower"] <= value <= row["upper"], name
        assert row["estimate"] == pytest.approx(value, rel=0.15)


def test_bass_ols_matches_the_regression_identities():
    # a series that follows S_t = a + b Y + c Y^2 exactly recovers p, q, m from a = pm, b = q - p, c = -q/m
    p, q, m = 0.02, 0.3, 1000.0
    y, sales = 0.0, []
    for _ in range(12):
        s = p * m + (q - p) * y - q / m * y * y
        sales.append(s)
        y += s
    est = spread.bass_ols(sales)
    assert (est["p"], est["q"], est["m"]) == pytest.approx((p, q, m), rel=1e-6)


def test_sir_fit_recovers_beta_gamma_and_initial():
    new = spread.sir_incidence(0.45, 0.15, 3, 20000, 80)
    noisy = np.random.default_rng(1).poisson(new).astype(float)
    fit = spread.fit_sir(noisy, 20000)
    est = fit.params["estimate"]
    assert est["beta"] == pytest.approx(0.45, rel=0.05) and est["gamma"] == pytest.approx(0.15, rel=0.05)
    assert fit.params.loc["beta", "lower"] <= 0.45 <= fit.params.loc["beta", "upper"]
    assert est["I0"] == pytest.approx(3, rel=0.5)


@pytest.mark.parametrize("series", [[1, 2, 3], [1, 2, np.nan, 4, 5], [0, 0, 0, 0, 0]])
def test_fit_rejects_unusable_series(series):
    with pytest.raises(UsageError):
        spread.fit_bass(series)


def test_forecast_plot_is_written(tmp_path):
    fit = spread.fit_bass([96, 195, 238, 380, 1045, 1230, 1267, 1828, 1586, 1673, 1800, 1580, 1500])
    out = spread.plot_fit(fit, tmp_path / "bass.png", horizon=25)
    assert out.read_bytes()[:4] == b"\x89PNG"


# ---------------------------------------------------------------- DebtRank
def test_debtrank_chain_closed_form():
    # 0 lent 10 to 1 (equity 20 -> impact 0.5); 1 lent 5 to 2 (equity 5 -> impact 1)
    exposures = np.array([[0, 10, 0], [0, 0, 5], [0, 0, 0]])
    table = spread.debtrank(exposures, [20, 5, 1], value=[1, 1, 1]).set_index("bank")
    assert table.loc[2, "debtrank"] == pytest.approx((1 + 0.5) / 3)
    assert table.loc[1, "debtrank"] == pytest.approx(0.5 / 3)
    assert table.loc[0, "debtrank"] == 0 and table.loc[2, "defaults"] == 1


def test_debtrank_cycle_propagates_each_node_once():
    # a 2-cycle with full impact: 0 (h=0.2) hits 1 (h=0.2), which hits 0 back once (h0 = 0.4), then stops:
    # without the once-only rule h would climb to 1 on both banks
    exposures = np.array([[0, 100], [100, 0]])
    table = spread.debtrank(exposures, [10, 10], shock=0.2).set_index("bank")
    assert table.loc[0, "debtrank"] == pytest.approx(0.5 * 0.4 + 0.5 * 0.2 - 0.5 * 0.2)


def test_debtrank_edge_list_and_errors():
    edges = pd.DataFrame({"lender": ["A", "B"], "borrower": ["B", "C"], "amount": [10.0, 5.0]})
    table = spread.debtrank(edges, {"A": 20, "B": 5, "C": 1})
    assert set(table["bank"]) == {"A", "B", "C"}
    with pytest.raises(UsageError, match="square"):
        spread.debtrank(np.ones((2, 3)), [1, 1])
    with pytest.raises(UsageError, match="equity"):
        spread.debtrank(np.ones((2, 2)), [1, 1, 1])


# ---------------------------------------------------------------- influence maximisation
def test_rr_sets_estimate_closed_form_star_spread():
    # IC on a star, seed = centre: spread = 1 + n_leaves * p
    graph = spread.as_graph(nx.star_graph(20))
    sampler = RRSampler(graph, np.full(graph.indices.size, 0.3), IC, seed=0)
    sampler.extend(40000)
    ptr, nodes = sampler.sets()
    hits = np.mean([0 in nodes[ptr[i]:ptr[i + 1]] for i in range(0, 40000, 4)])
    assert 21 * hits == pytest.approx(1 + 20 * 0.3, rel=0.05)


def test_lt_rr_sets_on_path_closed_form():
    # LT on a directed path with weight 1: everything downstream activates; root's RR set is its whole prefix
    graph = spread.as_graph(nx.path_graph(5, create_using=nx.DiGraph))
    sampler = RRSampler(graph, np.ones(graph.indices.size), LT, seed=0)
    sampler.extend(2000)
    ptr, _ = sampler.sets()
    assert np.diff(ptr).mean() == pytest.approx(3.0, rel=0.05)  # mean of 1..5
    assert max_coverage(*sampler.sets(), 5, 1)[0].tolist() == [0]


def test_rr_sets_do_not_depend_on_how_often_the_flat_array_grows(monkeypatch):
    """Large RR sets (a complete graph, p = 0.5: about every node) overflow the flat array many times;
    the set that did not fit is carried over, never redrawn, so the sets are those of one big array.
    The per-node work arrays are reused from block to block (fresh marks each time)."""
    from diffusio.spread.apps import rrsets

    graph = spread.as_graph(nx.complete_graph(30))
    rev = rrsets.reverse_edges(graph, np.full(graph.indices.size, 0.5))
    roomy = [rrsets.rr_block(rev, IC, 3000, 7) for _ in range(2)]
    monkeypatch.setattr(rrsets, "START_ROOM", 1)
    tight = rrsets.rr_block(rev, IC, 3000, 7)
    for ptr, nodes in roomy[1:] + [tight]:
        assert np.array_equal(ptr, roomy[0][0]) and np.array_equal(nodes, roomy[0][1])
    sizes = np.diff(roomy[0][0])
    assert sizes.mean() > 25  # the sets really are large: the array grew many times at START_ROOM = 1


def test_rr_pool_is_lean_and_the_same_however_it_grows():
    """The pool holds int32 nodes, once: no block keeps a doubled room alive, and no list of blocks
    stays beside the joined pool. Growing it in three pieces gives the sets of one request."""
    from diffusio.spread.apps import rrsets

    graph = spread.as_graph(nx.complete_graph(30))  # large sets: the blocks' flat arrays grow
    ptr, nodes = rrsets.rr_block(rrsets.reverse_edges(graph, 0.5), IC, 3000, 7)
    room = nodes.base.size if nodes.base is not None else nodes.size  # what the block keeps alive
    assert nodes.dtype == np.int32 and nodes.size == ptr[-1] and room <= 1.25 * nodes.size + 4096
    once = RRSampler(graph, 0.5, IC, seed=3)
    once.extend(3 * rrsets.RR_BLOCK)
    pieces = RRSampler(graph, 0.5, IC, seed=3)
    for _ in range(3):
        pieces.extend(rrsets.RR_BLOCK)
    assert pieces.size == once.size == 3 * rrsets.RR_BLOCK
    for a, b in zip(pieces.sets(), once.sets()):
        assert np.array_equal(a, b)
    assert vars(pieces).keys() == vars(once).keys() and not any(
        isinstance(v, list) for v in vars(pieces).values())
    flat = pieces.sets()[1]
    assert flat.dtype == np.int32 and flat.base is None


@pytest.mark.parametrize("model", [spread.IndependentCascade(p=0.1), spread.LinearThreshold()])
def test_imm_matches_celf_on_karate(model):
    graph = spread.as_graph("karate")
    imm_nodes, _, _ = spread.imm(graph, model, 4, epsilon=0.3, seed=0)
    celf_nodes, _ = spread.celf(graph, model, 4, trials=300, seed=0)
    score = {name: spread.expected_spread(graph, model, graph.labels[n].tolist(), trials=3000, seed=9)["mean"]
             for name, n in (("imm", imm_nodes), ("celf", celf_nodes))}
    assert score["imm"] >= 0.97 * score["celf"]
    assert spread.imm(graph, model, 4, epsilon=0.3, seed=0)[0].tolist() == imm_nodes.tolist()


def test_monte_carlo_spread_runs_every_cascade_to_its_end():
    """A cascade longer than the oracle's first horizon (2,000 steps) is replayed to its end, not cut:
    on a 3,000-node path with p = 1 every trial reaches all 3,000 nodes (it stopped at 2,001)."""
    import warnings

    from diffusio.spread.apps.influence import SpreadOracle
    from diffusio.spread.simulate import TruncationWarning

    path = nx.path_graph(3000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncationWarning)
        assert spread.expected_spread(path, spread.IndependentCascade(p=1.0), [0], trials=3)["mean"] == 3000
        table = spread.influence_maximization(path, spread.IndependentCascade(p=1.0), 1, method="degree",
                                              eval_trials=2)
    assert table.spread.iloc[-1] == 3000
    # p = 0.9995: about a third of the trials outlive the first horizon; replayed, they end where one
    # long run of the same streams ends, to the node
    model = spread.IndependentCascade(p=0.9995)
    replayed = SpreadOracle(path, model, trials=60, seed=3).samples(np.array([0]))
    one_run = SpreadOracle(path, model, trials=60, seed=3, max_steps=3001).samples(np.array([0]))
    assert np.array_equal(replayed, one_run) and 5 < (replayed > 2001).sum() < 55
    cut = SpreadOracle(path, spread.IndependentCascade(p=1.0), trials=2, seed=0, max_steps=100)
    with pytest.warns(TruncationWarning, match="2 of 2 trials were still spreading at max_steps=100"):
        assert cut.samples(np.array([0])).tolist() == [101.0, 101.0]


def test_influence_rejects_k_larger_than_graph():
    with pytest.raises(UsageError, match="k must be"):
        spread.influence_maximization("karate", spread.IndependentCascade(p=0.1), 35)
    with pytest.raises(UsageError, match="random thresholds"):
        spread.imm("karate", spread.LinearThreshold(threshold=0.5), 2)


# ---------------------------------------------------------------- interventions
def test_acquaintance_finds_hubs_and_orders_are_seeded():
    graph = nx.barabasi_albert_graph(500, 2, seed=0)
    degree = np.array([d for _, d in graph.degree()])
    acq = spread.immunization_order(graph, "acquaintance", seed=0)[:50]
    rnd = spread.immunization_order(graph, "random", seed=0)[:50]
    assert degree[acq].mean() > 1.5 * degree[rnd].mean()  # Cohen et al. 2003: friends of random nodes are hubs
    assert (spread.immunization_order(graph, "acquaintance", seed=0)[:50] == acq).all()


def test_targeted_immunization_beats_random_on_karate(tmp_path):
    table = spread.immunization_curve("karate", [0, 6], strategies=["random", "degree", "betweenness"],
                                      model=spread.SIR(beta=0.3, gamma=0.2), trials=300, seed=0)
    at6 = table[table.budget == 6].set_index("strategy")["mean"]
    assert at6["degree"] < at6["random"] and at6["betweenness"] < at6["random"]
    assert spread.plot_immunization(table, tmp_path / "imm.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(UsageError, match="budgets"):
        spread.immunization_curve("karate", [34])


# ---------------------------------------------------------------- spatial
def test_spatial_two_nodes_closed_form_and_decay():
    graph, xy = spread.grid(1, 2)
    levels = spread.spatial_spread(graph, xy, [0], steps=6, rate=0.3)
    assert np.allclose(levels[:, 1], 1 - 0.7 ** np.arange(7))
    graph, xy = spread.grid(1, 6)
    times = spread.arrival_times(spread.spatial_spread(graph, xy, [0], steps=80, rate=0.5))
    assert np.all(np.diff(times) > 0)  # development arrives later further from the source


def test_spatial_minnesota_map(tmp_path):
    graph, xy = spread.minnesota()
    levels = spread.spatial_spread(graph, xy, [0], steps=30, rate=0.8, decay=0.5)
    assert 0 < levels[30].mean() < 1 and np.all(np.diff(levels.sum(axis=1)) >= 0)
    out = spread.plot_spatial(graph, xy, levels, tmp_path / "map.png", at=[0, 30])
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_imm_memory_check_uses_the_rr_sets_it_will_draw_not_the_worst_case(monkeypatch):
    """A 10^7-node graph at epsilon 0.5 was refused (the bound with OPT >= 1: 4e10 RR sets, 695 GB)
    although IMM needed far fewer; the check now runs on each round's real count, before drawing it."""
    import diffusio._resources as resources

    graph = nx.barabasi_albert_graph(20_000, 3, seed=0)
    monkeypatch.setattr(resources, "physical_memory", lambda: 200 * 2**20)  # a 200 MiB machine
    nodes, _, rr_sets = spread.imm(graph, spread.IndependentCascade(p=0.05), 5, epsilon=0.5)
    assert len(nodes) == 5 and 16 * rr_sets < 100 * 2**20  # the worst case would be ~4e8 bytes here
    with pytest.raises(UsageError, match="raise epsilon"):
        spread.imm(graph, spread.IndependentCascade(p=0.05), 5, epsilon=0.005)


def test_imm_memory_check_counts_the_nodes_of_each_rr_set(monkeypatch):
    """On a graph where every RR set holds most nodes (a dense graph, p = 0.5), the sets' nodes, not
    their count, fill memory: IMM on a 10^7-node power-law graph grew to 9.7 GB before it was
    stopped.  The check now measures the mean set size on a few sets of their own and refuses first."""
    import diffusio._resources as resources

    graph = nx.complete_graph(400)
    model = spread.IndependentCascade(p=0.5)
    nodes, _, rr_sets = spread.imm(graph, model, 2, epsilon=0.5, seed=0)  # plenty of memory: runs
    monkeypatch.setattr(resources, "physical_memory", lambda: 4 * 2**20)  # a 4 MiB machine: 2 MiB for IMM
    with pytest.raises(UsageError, match=r"RR sets of about (3\d\d|400) nodes"):
        spread.imm(graph, model, 2, epsilon=0.5, seed=0)
    assert rr_sets * 16 < 2**20  # the count alone (16 bytes a set) would have let it through
