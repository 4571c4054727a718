"""Same model, same graph, same seeds: our results against established packages.

Peers are test dependencies (requirements-spread-test.txt); each test is
skipped if its peer is not installed.
"""

import networkx as nx
import numpy as np
import pytest
from scipy import stats

from diffusio import spread

SEEDS = [0, 5, 17]


@pytest.fixture(scope="module")
def ba_graph():
    return nx.barabasi_albert_graph(300, 2, seed=42)


def assert_same_mean(ours, theirs, alpha=1e-3):
    """Welch two-sample test: the means must not differ significantly."""
    ours, theirs = np.asarray(ours, float), np.asarray(theirs, float)
    assert stats.ttest_ind(ours, theirs, equal_var=False).pvalue > alpha, (ours.mean(), theirs.mean())


def test_independent_cascade_matches_cynetdiff(ba_graph):
    utils = pytest.importorskip("cynetdiff.utils")
    model, mapping = utils.networkx_to_ic_model(ba_graph, activation_prob=0.15, rng=7)
    model.set_seeds([mapping[s] for s in SEEDS])
    theirs = []
    for _ in range(3000):
        model.reset_model()
        model.advance_until_completion()
        theirs.append(model.get_num_activated_nodes())
    ours = spread.simulate(ba_graph, spread.IndependentCascade(p=0.15), seeds=SEEDS, trials=3000, seed=7)
    summary = ours.summary().iloc[-1]
    assert summary["active_lower"] - 1.0 < np.mean(theirs) < summary["active_upper"] + 1.0
    assert_same_mean(ours.final_counts["active"], theirs)


def test_linear_threshold_matches_cynetdiff(ba_graph):
    utils = pytest.importorskip("cynetdiff.utils")
    directed = ba_graph.to_directed()
    model, mapping = utils.networkx_to_lt_model(directed, rng=8)
    model.set_seeds([mapping[s] for s in SEEDS])
    theirs = []
    for _ in range(3000):
        model.reset_model()
        model.advance_until_completion()
        theirs.append(model.get_num_activated_nodes())
    ours = spread.simulate(directed, spread.LinearThreshold(), seeds=SEEDS, trials=3000, seed=8)
    assert_same_mean(ours.final_counts["active"], theirs)


def test_continuous_sir_final_size_distribution_matches_eon_fast_sir():
    eon = pytest.importorskip("EoN")
    graph = nx.karate_club_graph()
    tau, gamma = 0.3, 1.0
    theirs = []
    for trial in range(400):
        np.random.seed(trial)  # EoN draws from numpy's global generator
        _, _, _, recovered = eon.fast_SIR(graph, tau, gamma, initial_infecteds=[0])
        theirs.append(recovered[-1])
    ours = spread.simulate(graph, spread.ContinuousSIR(beta=tau, gamma=gamma), seeds=[0], trials=400, seed=9)
    assert stats.ks_2samp(ours.final_counts["R"], theirs).pvalue > 1e-3
    assert_same_mean(ours.final_counts["R"], theirs)


def _ndlib_runs(graph, make_model, configure, trials, iterations):
    config_module = pytest.importorskip("ndlib.models.ModelConfig")
    runs = []
    for trial in range(trials):
        np.random.seed(trial)
        model = make_model(graph)
        config = config_module.Configuration()
        configure(config)
        model.set_initial_status(config)
        runs.append([it["node_count"] for it in model.iteration_bunch(iterations, node_status=False)])
    return runs


def test_discrete_sir_curve_matches_ndlib():
    epidemics = pytest.importorskip("ndlib.models.epidemics")
    graph = nx.karate_club_graph()

    def configure(config):
        config.add_model_parameter("beta", 0.1)
        config.add_model_parameter("gamma", 0.2)
        config.add_model_initial_configuration("Infected", [0, 33])

    runs = _ndlib_runs(graph, epidemics.SIRModel, configure, trials=300, iterations=12)
    ours = spread.simulate(graph, spread.SIR(beta=0.1, gamma=0.2), seeds=[0, 33], trials=300, seed=10)
    for step in (2, 5, 11):
        assert_same_mean(ours.curves.loc[ours.curves["step"] == step, "R"], [run[step][2] for run in runs])
        assert_same_mean(ours.curves.loc[ours.curves["step"] == step, "I"], [run[step][1] for run in runs])


@pytest.mark.slow
def test_threshold_model_matches_ndlib_step_by_step():
    epidemics = pytest.importorskip("ndlib.models.epidemics")
    graph = nx.karate_club_graph()
    seeds = [0, 1, 2, 3]

    def configure(config):
        config.add_model_initial_configuration("Infected", seeds)
        for node in graph.nodes:
            config.add_node_configuration("threshold", node, 0.3)

    (theirs,) = _ndlib_runs(graph, epidemics.ThresholdModel, configure, trials=1, iterations=8)
    ours = spread.simulate(graph, spread.ThresholdOpinion(threshold=0.3), seeds=seeds, trials=1, max_steps=7)
    padded = ours.summary()["yes_mean"].tolist()
    padded += padded[-1:] * (8 - len(padded))
    assert padded == [float(counts[1]) for counts in theirs]
