import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

from diffusio import spread
from diffusio.errors import UsageError


def test_networkx_labels_direction_and_weights_survive():
    g = nx.DiGraph()
    g.add_weighted_edges_from([("a", "b", 0.5), ("b", "c", 2.0)])
    g.add_node("lonely")
    graph = spread.as_graph(g)
    assert graph.directed and graph.n_nodes == 4 and graph.n_edges == 2
    assert list(graph.labels) == ["a", "b", "c", "lonely"]
    a, b = graph.index_of(["a", "b"])
    assert graph.indices[graph.indptr[a]:graph.indptr[a + 1]].tolist() == [b]
    assert graph.weights[graph.indptr[a]] == 0.5
    in_ptr, in_idx, _ = graph.reverse_csr
    assert in_idx[in_ptr[b]:in_ptr[b + 1]].tolist() == [a]


def test_undirected_graph_with_self_loop_and_components():
    g = nx.Graph([(0, 1), (2, 3), (4, 4)])
    graph = spread.as_graph(g)
    assert not graph.directed
    assert graph.n_edges == 3
    assert graph.indices.size == 5  # two edges both ways, the loop once
    result = spread.simulate(g, spread.IndependentCascade(p=1.0), seeds=[0, 4], trials=3, seed=0)
    assert result.final_counts["active"].tolist() == [3, 3, 3]


def test_scipy_and_numpy_matrices_detect_symmetry():
    sym = sp.csr_array(np.array([[0, 1], [1, 0]]))
    assert not spread.as_graph(sym).directed
    asym = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    graph = spread.as_graph(asym)
    assert graph.directed and graph.n_edges == 2 and list(graph.labels) == [0, 1, 2]


def test_edge_list_csv_with_header_and_weights(tmp_path):
    path = tmp_path / "edges.csv"
    path.write_text("source,target,weight\nx,y,0.25\ny,z,1.0\n")
    graph = spread.as_graph(path)
    assert list(graph.labels) == ["x", "y", "z"] and graph.n_edges == 2
    x = graph.index_of(["x"])[0]
    assert graph.weights[graph.indptr[x]] == 0.25


def test_edge_list_tsv_without_header_gives_integer_labels(tmp_path):
    path = tmp_path / "edges.tsv"
    path.write_text("1\t2\n2\t3\n3\t1\n")
    graph = spread.read_edge_list(path, directed=True)
    assert graph.directed and graph.n_edges == 3
    assert sorted(graph.labels.tolist()) == [1, 2, 3]


def test_round_trip_to_networkx_keeps_labels():
    g = nx.les_miserables_graph()
    back = spread.as_graph(g).to_networkx()
    assert set(back.nodes) == set(g.nodes) and back.number_of_edges() == g.number_of_edges()


@pytest.mark.parametrize("bad, message", [
    (nx.Graph(), "empty"),
    (np.array([[0, -1], [-1, 0]]), ">= 0"),
    (np.zeros((2, 3)), "square"),
    ("no-such-file.csv", "neither a file"),
    (42, "cannot make a graph"),
])
def test_bad_graphs_raise_usage_errors(bad, message):
    with pytest.raises(UsageError, match=message):
        spread.as_graph(bad)


def test_unknown_seed_is_named():
    with pytest.raises(UsageError, match="'zz' is not in the graph"):
        spread.simulate(nx.path_graph(3), spread.SIR(), seeds=["zz"], trials=1)


@pytest.mark.parametrize("make", [
    lambda: spread.IndependentCascade(p=1.5),
    lambda: spread.IndependentCascade(p=-0.1),
    lambda: spread.SIR(beta=0.1, gamma=2.0),
    lambda: spread.SIR(beta="weights"),
    lambda: spread.Bass(p=0.6, q=0.6),
    lambda: spread.ContinuousSIR(beta=-1.0),
    lambda: spread.ThresholdOpinion(threshold=1.2),
])
def test_invalid_parameters_fail_at_construction(make):
    with pytest.raises(ValueError):
        make()


def test_lt_weights_must_sum_to_at_most_one():
    g = nx.DiGraph()
    g.add_weighted_edges_from([(0, 2, 0.7), (1, 2, 0.7)])
    with pytest.raises(UsageError, match="sum to"):
        spread.simulate(g, spread.LinearThreshold(weights="weight"), seeds=[0], trials=1)


def test_datasets_load_offline():
    assert spread.load_dataset("karate").n_nodes == 34
    assert spread.load_dataset("les-miserables").n_nodes == 77
    minnesota = spread.load_dataset("minnesota")
    assert minnesota.n_nodes == 2642 and not minnesota.directed
    ba = spread.load_dataset("barabasi-albert:n=200,m=2,seed=5")
    assert ba.n_nodes == 200
    assert np.array_equal(ba.indices, spread.random_graph("barabasi-albert", n=200, m=2, seed=5).indices)
    with pytest.raises(UsageError, match="unknown dataset"):
        spread.load_dataset("atlantis")
