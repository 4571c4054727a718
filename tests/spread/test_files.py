"""Issue 23: graph files read in chunks (CSV, .npz, .parquet) and the lean in-memory graph."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from diffusio import spread
from diffusio.errors import UsageError
from diffusio.spread import files


def _same(a: spread.Graph, b: spread.Graph) -> None:
    assert a.directed == b.directed
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.weights, b.weights)
    assert a.labels.tolist() == b.labels.tolist()


@pytest.fixture
def edges() -> pd.DataFrame:
    g = nx.gnm_random_graph(300, 1200, seed=3, directed=True)
    return pd.DataFrame(list(g.edges), columns=["source", "target"]) + 7  # labels 7..306, not 0..n-1


def test_the_graph_is_lean_int32_indices_and_no_memory_for_unit_weights():
    g = spread.as_graph(nx.gnm_random_graph(1000, 5000, seed=0))
    assert g.indices.dtype == np.int32 and g.indptr.dtype == np.int64
    assert g.unweighted and g.weights.strides == (0,) and float(g.weights[17]) == 1.0
    assert g.nbytes == g.indptr.nbytes + g.indices.nbytes == 8 * 1001 + 4 * 10_000
    weighted = spread.as_graph(np.array([[0, 0.5], [0.5, 0]]))
    assert not weighted.unweighted and weighted.weights.tolist() == [0.5, 0.5]


def test_weights_are_float32_where_that_is_exact_and_the_results_do_not_change():
    """Weights that float32 stores exactly (here quarters) take 4 bytes an edge; others (0.1 is not a
    float32) stay float64, so no probability, rate or exposure loses a digit.  The same simulation
    either way, to the bit, and `p="weight"` reads the graph's array without a per-call copy."""
    g = nx.gnm_random_graph(400, 2000, seed=2, directed=True)
    rng = np.random.default_rng(0)
    for u, v in g.edges:
        g.edges[u, v]["weight"] = rng.choice([0.25, 0.5, 0.75])
    quarters = spread.as_graph(g)
    assert quarters.weights.dtype == np.float32 and quarters.nbytes == 8 * 401 + 4 * 2000 + 4 * 2000
    m = nx.to_scipy_sparse_array(g, nodelist=range(400)).astype(np.float64)
    wide = spread.Graph(indptr=m.indptr.astype(np.int64), indices=m.indices.astype(np.int32), weights=m.data,
                        labels=np.arange(400), directed=True)  # the same weights held as float64
    model = spread.IndependentCascade(p="weight")
    a = spread.simulate(quarters, model, seeds=[0, 1], trials=40, seed=5, workers=1)
    b = spread.simulate(wide, model, seeds=[0, 1], trials=40, seed=5, workers=1)
    pd.testing.assert_frame_equal(a.curves, b.curves)
    assert model.prepare(quarters)[0] is quarters.weights  # no copy per call
    for u, v in g.edges:
        g.edges[u, v]["weight"] = 0.1
    assert spread.as_graph(g).weights.dtype == np.float64


def test_lean_graph_gives_the_same_simulation_as_networkx_input():
    g = nx.powerlaw_cluster_graph(2000, 3, 0.1, seed=1)
    ours = spread.as_graph(g)
    via_matrix = spread.as_graph(sp.csr_array(nx.to_scipy_sparse_array(g, nodelist=range(2000))), directed=False)
    a = spread.simulate(ours, spread.IndependentCascade(p=0.1), seeds=[0, 1], trials=50, seed=4, workers=1)
    b = spread.simulate(via_matrix, spread.IndependentCascade(p=0.1), seeds=[0, 1], trials=50, seed=4, workers=1)
    pd.testing.assert_frame_equal(a.curves, b.curves)


def test_csv_in_chunks_equals_one_read(tmp_path, edges, monkeypatch):
    path = tmp_path / "edges.csv"
    edges.to_csv(path, index=False)
    whole = spread.read_edge_list(path, directed=True)
    monkeypatch.setattr(files, "CHUNK_LINES", 97)  # 13 chunks
    _same(spread.read_edge_list(path, directed=True), whole)
    assert whole.n_edges == 1200 and whole.labels.dtype == np.int64 and whole.labels[0] == edges.source[0]


def test_csv_with_spaces_comments_and_no_header(tmp_path):
    path = tmp_path / "edges.txt"
    path.write_text("# a comment line\n1 2\n2   3\n\n3 1\n")
    g = spread.read_edge_list(path, directed=True)
    assert g.n_edges == 3 and g.labels.tolist() == [1, 2, 3]


def test_npz_edges_and_npz_csr_equal_the_csv(tmp_path, edges):
    csv_path, npz_edges, npz_csr = tmp_path / "e.csv", tmp_path / "e.npz", tmp_path / "c.npz"
    edges.to_csv(csv_path, index=False)
    np.savez(npz_edges, source=edges.source.to_numpy(), target=edges.target.to_numpy())
    reference = spread.read_edge_list(csv_path, directed=True)
    _same(spread.read_edge_list(npz_edges, directed=True), reference)
    m = sp.csr_array((np.ones(len(edges)), (edges.source - 7, edges.target - 7)), shape=(300, 300))
    m.sort_indices()
    np.savez(npz_csr, indptr=m.indptr, indices=m.indices)
    g = spread.as_graph(npz_csr, directed=True)
    assert g.n_edges == 1200 and g.labels.tolist() == list(range(300)) and g.unweighted
    undirected = spread.as_graph(npz_csr)  # each edge both ways, as for every other input
    assert undirected.n_edges == spread.as_graph(m, directed=False).n_edges


def test_parquet_equals_the_csv(tmp_path, edges):
    pytest.importorskip("pyarrow")
    edges = edges.assign(weight=np.linspace(0.1, 0.9, len(edges)))
    edges.to_csv(tmp_path / "e.csv", index=False)
    edges.to_parquet(tmp_path / "e.parquet", row_group_size=100)
    _same(spread.read_edge_list(tmp_path / "e.parquet", directed=True),
          spread.read_edge_list(tmp_path / "e.csv", directed=True))


@pytest.mark.parametrize("arrays, message", [
    (dict(indptr=np.array([0, 2, 1]), indices=np.array([1, 0])), "indptr must rise"),
    (dict(indptr=np.array([0, 1, 2]), indices=np.array([1, 5])), "node numbers in"),
    (dict(indptr=np.array([0, 2, 2]), indices=np.array([1, 1])), "sorted and without repeats"),
    (dict(indptr=np.array([0, 1, 1]), indices=np.array([1]), weights=np.array([-1.0])), "weights must be"),
    (dict(something=np.arange(3)), "needs 'indptr' and 'indices'"),
])
def test_bad_npz_files_are_refused_with_a_message(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(UsageError, match=message):
        spread.read_edge_list(path, directed=True)


def test_a_pickled_npz_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, source=np.array([object()], dtype=object), target=np.array([1]))
    with pytest.raises(UsageError, match="cannot read"):
        spread.read_edge_list(path)


def test_integer_labels_are_found_without_a_table_of_every_node():
    g = spread.as_graph(nx.relabel_nodes(nx.path_graph(5), {i: 10 * i + 3 for i in range(5)}))
    assert g.index_of([43, 3.0, np.int64(23)]).tolist() == [4, 0, 2]
    for bad in (4, "3", 2**80, 3.5, None):
        with pytest.raises(UsageError, match="not in the graph"):
            g.index_of([bad])
    plain = spread.as_graph(nx.path_graph(4))
    assert plain.index_of([3, 0]).tolist() == [3, 0] and plain._index == {"range": True}


def test_the_cli_reads_every_graph_file_kind_alike(tmp_path, edges, capsys):
    """`spread simulate --graph` takes a CSV, an .npz and a .parquet file of the same edges and gives
    the same run."""
    import json

    from diffusio.cli.main import main

    pytest.importorskip("pyarrow")
    edges.to_csv(tmp_path / "e.csv", index=False)
    np.savez(tmp_path / "e.npz", source=edges.source.to_numpy(), target=edges.target.to_numpy())
    edges.to_parquet(tmp_path / "e.parquet", row_group_size=200)
    runs = []
    for name in ("e.csv", "e.npz", "e.parquet"):
        assert main(["spread", "simulate", "--graph", str(tmp_path / name), "--directed", "--model", "ic",
                     "--p", "0.2", "--seeds", "7,8", "--trials", "30", "--seed", "1", "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        runs.append({k: v for k, v in report.items() if k not in ("seconds", "graph")})
    assert runs[0] == runs[1] == runs[2] and runs[0]["nodes"] == 300
