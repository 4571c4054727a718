"""Simulated means against exact or mean-field closed forms."""

import networkx as nx
import numpy as np
import pytest
from scipy import optimize

from diffusio import spread


def final_mean(result, state):
    return result.final_counts[state].mean()


def test_ic_on_path_matches_geometric_sum():
    n, p = 8, 0.6
    result = spread.simulate(nx.path_graph(n), spread.IndependentCascade(p=p), seeds=[0], trials=20000, seed=1)
    exact = sum(p ** k for k in range(n))
    row = result.summary().iloc[-1]
    assert row["active_lower"] <= exact <= row["active_upper"]
    assert final_mean(result, "active") == pytest.approx(exact, rel=0.02)


@pytest.mark.parametrize("p", [0.3, 1.0])
def test_ic_on_star_from_centre_and_from_leaf(p):
    star = nx.star_graph(20)  # centre 0, leaves 1..20: a hub, so uniform p takes the geometric-skip path
    centre = spread.simulate(star, spread.IndependentCascade(p=p), seeds=[0], trials=20000, seed=2)
    leaf = spread.simulate(star, spread.IndependentCascade(p=p), seeds=[1], trials=20000, seed=3)
    assert final_mean(centre, "active") == pytest.approx(1 + 20 * p, rel=0.02)
    assert final_mean(leaf, "active") == pytest.approx(1 + p + 19 * p * p, rel=0.02)


def test_ic_per_edge_probabilities():
    path = nx.path_graph(3)
    model = spread.IndependentCascade(p={(0, 1): 1.0, (1, 2): 0.25})
    result = spread.simulate(path, model, seeds=[0], trials=20000, seed=4)
    assert final_mean(result, "active") == pytest.approx(2.25, rel=0.02)


def _mean_field_final_size(r0):
    return optimize.brentq(lambda r: r - (1 - np.exp(-r0 * r)), 1e-6, 1.0)


def test_continuous_sir_on_complete_graph_matches_final_size_equation():
    n, beta, gamma = 400, 0.005, 1.0
    r0 = (n - 1) * beta / gamma  # = 1.995
    result = spread.simulate(nx.complete_graph(n), spread.ContinuousSIR(beta=beta, gamma=gamma),
                             seeds=[0], trials=300, seed=5, max_steps=200)
    sizes = result.final_counts["R"].to_numpy() / n
    major = sizes[sizes > 0.2]  # the equation describes major outbreaks
    assert len(major) > 100
    assert major.mean() == pytest.approx(_mean_field_final_size(r0), abs=0.03)
    # and the chance of a major outbreak is 1 - 1/R0 for one initial case
    assert len(major) / len(sizes) == pytest.approx(1 - 1 / r0, abs=0.1)


def test_discrete_sir_on_complete_graph_matches_final_size_equation():
    n, beta, gamma = 400, 0.004, 0.5
    # an infected node transmits over a Geometric(gamma) number of steps
    per_edge = 1 - gamma * (1 - beta) / (1 - (1 - gamma) * (1 - beta))
    r0 = (n - 1) * per_edge
    result = spread.simulate(nx.complete_graph(n), spread.SIR(beta=beta, gamma=gamma), seeds=[0, 1, 2],
                             trials=300, seed=6)
    sizes = result.final_counts["R"].to_numpy() / n
    major = sizes[sizes > 0.2]
    assert major.mean() == pytest.approx(_mean_field_final_size(r0), abs=0.03)


def test_si_growth_on_complete_graph_follows_mean_field():
    n, beta, i0 = 500, 0.002, 50
    result = spread.simulate(nx.complete_graph(n), spread.SI(beta=beta), seeds=list(range(i0)), trials=40, seed=7)
    expected = [i0]
    while len(expected) < 12:
        infected = expected[-1]
        expected.append(infected + (n - infected) * (1 - (1 - beta) ** infected))
    simulated = result.summary()["I_mean"].to_numpy()[:12]
    np.testing.assert_allclose(simulated, expected, rtol=0.05)
    assert simulated[-1] > 2 * i0


def test_bass_curve_solves_bass_equation():
    p, q = 0.03, 0.38
    times = np.linspace(0, 20, 2001)
    curve = spread.bass_curve(p, q, times)
    share = curve["adopted"].to_numpy()
    assert share[0] == 0 and 0.99 < share[-1] <= 1
    derivative = np.gradient(share, times)
    np.testing.assert_allclose(derivative[1:-1], ((p + q * share) * (1 - share))[1:-1], atol=1e-4)
    peak_time = times[np.argmax(curve["rate"])]
    assert peak_time == pytest.approx(np.log(q / p) / (p + q), abs=0.02)


def test_network_bass_on_complete_graph_follows_discrete_bass_recursion():
    n, p, q = 1000, 0.02, 0.3
    result = spread.simulate(nx.complete_graph(n), spread.Bass(p=p, q=q), trials=10, seed=8, max_steps=30)
    share = [0.0]
    for _ in range(30):
        f = share[-1]
        share.append(f + (1 - f) * (p + q * f * n / (n - 1)))
    simulated = result.summary()["adopted_mean"].to_numpy()[:31] / n
    np.testing.assert_allclose(simulated[5:], share[5:len(simulated)], rtol=0.05)


def test_discrete_sir_on_a_hub_matches_one_step_binomial():
    # one step from the centre of a star: leaves infected ~ Binomial(40, beta), via the geometric-skip path
    result = spread.simulate(nx.star_graph(40), spread.SIR(beta=0.2, gamma=1.0), seeds=[0], trials=20000, seed=12)
    infected_after_one_step = result.curves.loc[result.curves["step"] == 1, "I"]
    assert infected_after_one_step.mean() == pytest.approx(40 * 0.2, rel=0.02)
    assert infected_after_one_step.var() == pytest.approx(40 * 0.2 * 0.8, rel=0.06)
