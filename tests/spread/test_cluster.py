"""Monte Carlo on a local Dask cluster of 2 worker processes gives the local result exactly,
even when a worker is killed mid-run; bad clusters get clear errors."""

import os
import signal
import threading
import time

import networkx as nx
import numpy as np
import pytest

from diffusio import spread
from diffusio.cli.main import main
from diffusio.errors import UsageError

distributed = pytest.importorskip("distributed")
from diffusio import cluster  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with cluster.connect(workers=2) as c:
        yield c


def same(a, b):
    assert np.array_equal(a._counts, b._counts)
    assert np.array_equal(a.trial_steps, b.trial_steps)
    assert (a._final is None) == (b._final is None)
    if a._final is not None:
        assert np.array_equal(a._final, b._final)
    assert (a.hit_max_steps, a.cut_short) == (b.hit_max_steps, b.cut_short)


@pytest.mark.slow
@pytest.mark.parametrize("graph, model, seeds", [
    ("karate", spread.SIR(beta=0.05, gamma=0.1), [0]),
    ("karate", spread.IndependentCascade(p=0.2), None),
    (nx.gnp_random_graph(300, 0.02, seed=1, directed=True), spread.LinearThreshold(threshold=0.3), [0, 1, 2]),
    ("karate", spread.ContinuousSIR(beta=0.3, gamma=0.2), [0]),
])
def test_cluster_equals_local(client, graph, model, seeds):
    local = spread.simulate(graph, model, seeds, trials=300, seed=7, final_states=True)
    remote = spread.simulate(graph, model, seeds, trials=300, seed=7, final_states=True, client=client)
    same(local, remote)


@pytest.mark.slow
def test_long_trials_rerun_on_the_cluster_as_locally(client):
    # LT along a path activates one node per step: 700 steps, beyond the first horizon of 500
    path = nx.path_graph(700)
    model = spread.LinearThreshold(threshold=0.5)
    same(spread.simulate(path, model, [0], trials=4, seed=1),
         spread.simulate(path, model, [0], trials=4, seed=1, client=client))


@pytest.mark.slow
def test_sweep_on_the_cluster_equals_local(client):
    grid = {"beta": [0.02, 0.1], "gamma": [0.1, 0.3]}
    local = spread.sweep("karate", spread.SIR, grid, [0], trials=100, seed=3, progress=False)
    remote = spread.sweep("karate", spread.SIR, grid, [0], trials=100, seed=3, client=client, progress=False)
    assert local.equals(remote) and len(local) == 4
    # 6 points on 2 workers: whole points run as tasks, one round trip for the sweep; the same table
    grid = {"beta": [0.02, 0.1, 0.3], "gamma": [0.1, 0.3]}
    local = spread.sweep("karate", spread.SIR, grid, [0], trials=60, seed=4, progress=False)
    remote = spread.sweep("karate", spread.SIR, grid, [0], trials=60, seed=4, client=client, progress=False)
    assert local.equals(remote) and len(local) == 6


@pytest.mark.slow
def test_a_killed_worker_does_not_change_the_result(client):
    graph = spread.random_graph("barabasi-albert", n=20_000, m=3, seed=0)
    model = spread.SIR(beta=0.05, gamma=0.1)
    local = spread.simulate(graph, model, trials=400, seed=11, workers=1)
    pids = list(client.run(os.getpid).values())

    def kill_one():  # once blocks are running on the workers
        deadline = time.time() + 60
        while not any(client.processing().values()) and time.time() < deadline:
            time.sleep(0.02)
        os.kill(pids[0], signal.SIGKILL)

    killer = threading.Thread(target=kill_one)
    killer.start()
    remote = spread.simulate(graph, model, trials=400, seed=11, client=client)
    killer.join()
    same(local, remote)
    client.wait_for_workers(2, timeout=60)  # the nanny restarts it for the next tests
    assert pids[0] not in client.run(os.getpid).values()  # it died (mid-run: see kill_one)


@pytest.mark.slow
def test_imm_and_immunization_on_the_cluster_equal_local(client):
    graph = spread.random_graph("barabasi-albert", n=2000, m=2, seed=4)
    model = spread.IndependentCascade(p=0.05)
    local = spread.influence_maximization(graph, model, 5, epsilon=0.3, seed=2, eval_trials=100)
    remote = spread.influence_maximization(graph, model, 5, epsilon=0.3, seed=2, eval_trials=100, client=client)
    assert local.equals(remote)
    one = spread.imm(graph, model, 5, epsilon=0.3, seed=2, threads=1)
    two = spread.imm(graph, model, 5, epsilon=0.3, seed=2, threads=2)
    assert all(np.array_equal(a, b) for a, b in zip(one[:2], two[:2])) and one[2] == two[2]
    kwargs = dict(strategies=["degree", "random"], model=spread.SIR(beta=0.2, gamma=0.2), trials=60, seed=1)
    assert spread.immunization_curve(graph, [0, 50], **kwargs).equals(
        spread.immunization_curve(graph, [0, 50], client=client, **kwargs))


class FakeClient:
    def __init__(self, versions=None, error=None):
        self.versions, self.error = versions, error

    def run(self, fn, on_error="raise"):
        if self.error:
            raise self.error
        return self.versions


def test_workers_must_run_this_version():
    from diffusio import __version__

    assert cluster.check_workers(FakeClient({"tcp://a": __version__, "tcp://b": __version__})) == 2
    with pytest.raises(UsageError, match="runs diffusio 0.0.1"):
        cluster.check_workers(FakeClient({"tcp://a": "0.0.1"}))
    with pytest.raises(UsageError, match="no workers"):
        cluster.check_workers(FakeClient({}))
    with pytest.raises(UsageError, match="install diffusio"):
        cluster.check_workers(FakeClient({"tcp://a": ModuleNotFoundError("No module named 'diffusio'")}))
    # a worker that died while asked is left out; the others carry on
    assert cluster.check_workers(FakeClient({"tcp://a": __version__, "tcp://b": ConnectionError("closed")})) == 1
    with pytest.raises(UsageError, match="scheduler and workers are running"):
        cluster.check_workers(FakeClient(error=OSError("scheduler gone")))


def test_influence_methods_that_cannot_use_a_cluster_refuse_one(capsys):
    """CELF and the degree heuristics run locally: asking for a cluster is refused, not ignored."""
    with pytest.raises(UsageError, match="method='celf' runs on this machine only"):
        spread.influence_maximization("karate", spread.IndependentCascade(p=0.1), 2, method="celf", client=object())
    assert main(["spread", "influence", "--graph", "karate", "-k", "2", "--method", "degree", "--workers", "1"]) == 2
    assert "method='degree' runs on this machine only" in capsys.readouterr().err


def test_connect_needs_one_of_scheduler_or_workers():
    for kwargs in ({}, {"scheduler": "tcp://x:1", "workers": 2}):
        with pytest.raises(UsageError, match="either scheduler"):
            with cluster.connect(**kwargs):
                pass


def test_an_unreachable_scheduler_says_so_in_time(monkeypatch, capsys):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", 1)
    start = time.time()
    assert main(["spread", "simulate", "--graph", "karate", "--model", "sir", "--beta", "0.1", "--gamma", "0.1",
                 "--trials", "5", "--scheduler", "tcp://127.0.0.1:9"]) == 2
    assert time.time() - start < 20
    assert "could not reach a Dask scheduler at tcp://127.0.0.1:9" in capsys.readouterr().err


@pytest.mark.parametrize("grid, message", [(["beta"], "write a parameter"), (["beta=x"], "write a parameter"),
                                           (["beta=0.1", "beta=0.2"], "twice"), (["p=0.1"], "does not apply")])
def test_sweep_cli_refuses_bad_grids(grid, message, capsys):
    args = [a for g in grid for a in ("--grid", g)]
    assert main(["spread", "sweep", "--graph", "karate", "--model", "sir", *args, "--trials", "5"]) == 2
    assert message in capsys.readouterr().err


def test_sweep_cli_writes_a_csv(tmp_path, capsys):
    out = tmp_path / "s.csv"
    assert main(["spread", "sweep", "--graph", "karate", "--model", "ic", "--grid", "p=0.05,0.3", "--seeds", "0",
                 "--trials", "50", "-o", str(out)]) == 0
    import pandas as pd

    table = pd.read_csv(out)
    assert table.p.tolist() == [0.05, 0.3] and table.active_mean.iloc[1] > table.active_mean.iloc[0]


@pytest.mark.slow
def test_synthesize_on_the_cluster_makes_the_same_bytes(client):
    from diffusio.generative import Generator
    from diffusio.generative.trust.synthesize import SHARD, synthesize

    import torch

    gen = Generator.load("fashion-fast")
    own, theirs = torch.get_num_threads(), client.run(torch.get_num_threads)
    torch.set_num_threads(2 if 1 in theirs.values() else 1)  # not the workers' count: the bytes must not change
    try:
        local = synthesize(gen, SHARD // 2 + 3, classes=["Bag", "Coat"], steps=1, seed=5)  # 2 shards
        remote = synthesize(gen, SHARD // 2 + 3, classes=["Bag", "Coat"], steps=1, seed=5, client=client)
    finally:
        torch.set_num_threads(own)
    assert client.run(torch.get_num_threads) == theirs  # the workers' own count is put back
    assert np.array_equal(local["images"], remote["images"]) and np.array_equal(local["labels"], remote["labels"])


@pytest.mark.slow
def test_synthesize_marks_with_the_clients_key_not_the_workers(client, monkeypatch):
    """$DIFFUSIO_WATERMARK_KEY set where the user runs synthesize, not on the workers: the shards are
    marked with the user's key, as a local run marks them."""
    from diffusio.generative import Generator
    from diffusio.generative.trust.synthesize import synthesize
    from diffusio.generative.trust.watermark import KEY_ENV

    assert not any(client.run(lambda: os.environ.get(KEY_ENV)).values())
    gen = Generator.load("fashion-fast")
    public = synthesize(gen, 3, classes=["Bag"], steps=1, seed=2)
    monkeypatch.setenv(KEY_ENV, "a private key")
    local = synthesize(gen, 3, classes=["Bag"], steps=1, seed=2)
    remote = synthesize(gen, 3, classes=["Bag"], steps=1, seed=2, client=client)
    assert not np.array_equal(local["images"], public["images"])
    assert np.array_equal(local["images"], remote["images"])


def _pretend_version(version):
    import diffusio

    diffusio.__version__ = version


@pytest.mark.slow
def test_real_workers_of_another_version_are_refused_by_every_entry_point(client):
    """Workers that run another diffusio are named before any work is sent, also when the user passes
    a client of their own to IMM or synthesize (not only through simulate's graph shipping)."""
    import diffusio
    from diffusio.generative import Generator
    from diffusio.generative.trust.synthesize import synthesize

    ours = diffusio.__version__
    client.run(_pretend_version, "0.0.1")
    try:
        graph = nx.path_graph(30)  # a graph this cluster has not been sent yet
        calls = [lambda: spread.simulate(graph, spread.IndependentCascade(p=0.3), trials=4, seed=0, client=client),
                 lambda: spread.imm(graph, spread.IndependentCascade(p=0.3), 2, epsilon=0.5, client=client),
                 lambda: synthesize(Generator.load("fashion-fast"), 1, classes=["Bag"], steps=1, client=client)]
        for call in calls:
            with pytest.raises(UsageError, match="runs diffusio 0.0.1, this client"):
                call()
    finally:
        client.run(_pretend_version, ours)
    assert set(client.run(cluster._version).values()) == {ours}


def test_a_run_on_a_cluster_without_workers_says_so_instead_of_waiting_forever(monkeypatch):
    """Every worker gone mid-run (here: none ever started): the tasks wait; after WORKERLESS_TIMEOUT
    seconds the run is cancelled with a message naming what it waited for."""
    monkeypatch.setattr(cluster, "WORKERLESS_TIMEOUT", 0.5)
    monkeypatch.setattr(cluster, "POLL", 0.1)
    with distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=None) as empty, \
            distributed.Client(empty) as c:
        futures = [c.submit(sum, [i, 1], pure=False) for i in range(3)]
        start = time.time()
        with pytest.raises(UsageError, match="RR sets on the cluster: the Dask cluster has had no workers for 0.5 s, "
                                             "so 3 of 3 tasks cannot run"):
            cluster.gather(c, futures, "RR sets on the cluster")
        assert time.time() - start < 10
        assert all(f.cancelled() for f in futures)


def test_results_arrive_in_order_through_the_watch(client):
    futures = [client.submit(pow, 2, i, pure=False) for i in range(6)]
    assert cluster.gather(client, futures, "a test") == [1, 2, 4, 8, 16, 32]


@pytest.mark.slow
def test_the_cli_on_a_local_cluster_prints_what_it_prints_locally(tmp_path, capsys):
    """`--workers 2` on spread simulate, sweep and influence, and on synthesize: the same output as
    the local run (but the seconds)."""
    import json

    def run(args):
        assert main(args) == 0
        return capsys.readouterr().out

    sim = ["spread", "simulate", "--graph", "karate", "--model", "sir", "--beta", "0.1", "--gamma", "0.2",
           "--trials", "40", "--seed", "3", "--json"]
    local, remote = (json.loads(run(sim + extra)) for extra in ([], ["--workers", "2"]))
    assert {k: v for k, v in local.items() if k != "seconds"} == {k: v for k, v in remote.items() if k != "seconds"}
    sweep = ["spread", "sweep", "--graph", "karate", "--model", "ic", "--grid", "p=0.05,0.2", "--trials", "30"]
    run(sweep + ["-o", str(tmp_path / "a.csv")])
    run(sweep + ["-o", str(tmp_path / "b.csv"), "--workers", "2"])
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    imm = ["spread", "influence", "--graph", "karate", "-k", "3", "--epsilon", "0.5", "--eval-trials", "50", "--json"]
    local, remote = (json.loads(run(imm + extra)) for extra in ([], ["--workers", "2"]))
    assert local["seeds"] == remote["seeds"] and local["expected_spread"] == remote["expected_spread"]
    syn = ["synthesize", "fashion-fast", "--per-class", "2", "--classes", "Bag,Coat", "--steps", "1"]
    run(syn + ["-o", str(tmp_path / "a.npz")])
    run(syn + ["-o", str(tmp_path / "b.npz"), "--workers", "2"])
    with np.load(tmp_path / "a.npz") as a, np.load(tmp_path / "b.npz") as b:
        assert np.array_equal(a["images"], b["images"]) and np.array_equal(a["labels"], b["labels"])
