"""The hostile-user probe of issue 26 at a large budget: the strategies of the CI fuzz
(tests/fuzz_cases/), every case run as its own ``python -m diffusio`` process with a time limit
(so that hangs are caught and killed), then the studio's endpoints on a real ``diffusio serve``.

Run:  OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/probe.py --cases 400 --studio-cases 300 --seed 0 --timeout 60

For the CLI it counts, per command: cases tried, successes, clean errors (non-zero exit with a
message), tracebacks (an uncaught exception, a crash, or an error without a message), hangs (killed
at --timeout), exit 0 on an invalid value, and input files modified (every input is hashed before
and after).  For the studio: 200s, clean 4xx/503 answers, 500s or answers that reveal a temporary
path, hangs (no answer within the server's limit plus a margin), 200 on an invalid value, and
whether the server is still up; then the server is killed mid-request and its temporary folder is
checked for leftovers.  Cases run one at a time.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import fuzz_cases  # noqa: E402

KINDS = ["success", "clean error", "traceback", "hang", "exit 0 on invalid", "input modified"]
SLOW_EVEN_TINY = {"audit memorization"}  # a valid call compares with 60,000 images (a minute): invalid values only


def run_case(argv: list[str], timeout: float, env: dict) -> tuple[int | None, str, bool, float]:
    start = time.monotonic()
    if any("\x00" in a for a in argv):  # no program can receive a NUL in an argument: the OS refuses it
        return 2, "diffusio: an argument holds a NUL byte (not passed: execve cannot carry it)", False, 0.0
    proc = subprocess.Popen([sys.executable, "-m", "diffusio", *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=timeout)
        return proc.returncode, err.decode(errors="replace"), False, time.monotonic() - start
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        return None, err.decode(errors="replace"), True, time.monotonic() - start


def probe_cli(n: int, seed_: int, timeout: float, names: list[str] | None,
              in_process: bool = False) -> tuple[dict, list]:
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    bad: list[tuple[str, list[str], str]] = []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    work = Path(tempfile.mkdtemp(prefix="diffusio-probe-"))
    prepared = work / "prepared"
    prepared.mkdir()
    names = names or sorted(fuzz_cases.COMMANDS)
    cases = fuzz_cases.cli_cases(names=names, invalid_only=SLOW_EVEN_TINY)
    done = [0]

    @seed(seed_)
    @settings(max_examples=n, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=cases)
    def one(case):
        done[0] += 1
        folder = work / f"case-{done[0]}"
        try:
            argv, digests = fuzz_cases.materialize(case, folder, prepared)
        except Exception as err:  # noqa: BLE001 -- the harness, not diffusio: say so and go on
            counts[case.command]["harness error"] += 1
            print(f"\nharness error for {case!r}: {err!r}", file=sys.stderr)
            return
        if in_process:  # quick: no start-up per case, but a hang in C code is not interrupted
            code, err, hang, seconds = fuzz_cases.run_in_process(argv, timeout)
        else:
            code, err, hang, seconds = run_case(argv, timeout, env)
        outcome = fuzz_cases.verdict(case, code, err, hang, fuzz_cases.changed(digests))
        group = case.command.split()[0] if case.command.startswith(("spread simulate",)) else case.command
        counts[group][outcome] += 1
        if outcome not in ("success", "clean error"):
            last = [line for line in err.strip().splitlines() if line.strip()][-1:] or [""]
            bad.append((outcome, ["diffusio", *argv], last[0][:300]))
            print(f"\n{outcome}: {argv}\n  -> {last[0][:300]}", file=sys.stderr)
        print(f"\r{done[0]}/{n} {case.command:<24} {outcome:<18} {seconds:5.1f} s", end="", file=sys.stderr, flush=True)
        subprocess.run(["rm", "-rf", str(folder)], check=False)

    one()
    print(file=sys.stderr)
    subprocess.run(["rm", "-rf", str(work)], check=False)
    return counts, bad


# ---------------------------------------------------------------- studio
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(limits, tmpdir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(tmpdir)}
    proc = subprocess.Popen([sys.executable, "-m", "diffusio", "serve", "--port", str(port), "--max-n", str(limits.max_n),
                             "--max-steps", str(limits.max_steps), "--max-trials", str(limits.max_trials),
                             "--timeout", str(limits.request_seconds), "--max-running", str(limits.max_running)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/v1/graphs", timeout=2).read()
            return proc, url
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the studio did not start")


def request(url: str, path: str, body, timeout: float) -> tuple[int | None, str | None, float]:
    start = time.monotonic()
    data = None if path in fuzz_cases.GET_PATHS else fuzz_cases.json_safe(body)
    req = urllib.request.Request(url + path, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            r.read()
            return r.status, None, time.monotonic() - start
    except urllib.error.HTTPError as err:
        try:
            detail = json.loads(err.read()).get("detail")
        except (ValueError, AttributeError):
            detail = None
        return err.code, detail if isinstance(detail, str) else None, time.monotonic() - start
    except (TimeoutError, socket.timeout, urllib.error.URLError, ConnectionError):  # e.g. a server killed mid-answer
        return None, None, time.monotonic() - start


def probe_studio(n: int, seed_: int) -> tuple[collections.Counter, list, dict]:
    from diffusio.studio import Limits

    limits = Limits(max_n=2, max_steps=3, max_trials=50, request_seconds=10.0, max_running=2)
    margin = 10.0
    tmpdir = Path(tempfile.mkdtemp(prefix="diffusio-probe-tmp-"))
    proc, url = start_server(limits, tmpdir)
    counts, bad = collections.Counter(), []
    secrets = (str(tmpdir), "diffusio-studio-", "Traceback", "/tmp/")

    @seed(seed_)
    @settings(max_examples=n, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=fuzz_cases.studio_cases(limits))
    def one(case):
        path, body, valid = case
        status, detail, seconds = request(url, path, body, limits.request_seconds + margin)
        if status is None:
            outcome = "hang"
        elif status >= 500 and status != 503 or any(s in (detail or "") for s in secrets) \
                or (status != 200 and not (detail or "").strip()):
            outcome = "traceback"
        elif status == 200 and valid is False:
            outcome = "exit 0 on invalid"
        else:
            outcome = "success" if status == 200 else "clean error"
        counts[outcome] += 1
        if outcome not in ("success", "clean error"):
            bad.append((outcome, [path, json.dumps(body, allow_nan=True, default=repr)[:400]], f"{status}: {detail}"))
        print(f"\rstudio {sum(counts.values())}/{n} {outcome:<18}", end="", file=sys.stderr, flush=True)

    one()
    print(file=sys.stderr)
    alive = proc.poll() is None
    # killed mid-request: does a temporary folder stay behind?
    body = {"edges": "".join(f"{i},{(i * 7 + 1) % 3000}\n" for i in range(3000)), "model": "sir", "trials": 50,
            "params": {"beta": 0.1, "gamma": 0.1}, "max_steps": 200}
    import threading

    threading.Thread(target=request, args=(url, "/v1/spread/simulate", body, 30), daemon=True).start()
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    left_after_kill = sorted(p.name for p in tmpdir.iterdir())
    proc2, _ = start_server(limits, tmpdir)  # a restart cleans what a killed server left
    left_after_restart = sorted(p.name for p in tmpdir.iterdir())
    proc2.send_signal(signal.SIGINT)
    try:
        proc2.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc2.pid, signal.SIGKILL)
    subprocess.run(["rm", "-rf", str(tmpdir)], check=False)
    return counts, bad, {"server alive after the fuzz": alive, "temp entries after SIGKILL mid-request": left_after_kill,
                         "temp entries after a restart": left_after_restart}


def table(rows: dict[str, collections.Counter]) -> str:
    head = ["command", "cases", *KINDS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    total = collections.Counter()
    for name, c in sorted(rows.items()):
        total.update(c)
        lines.append("| " + " | ".join([name, str(sum(c.values()))] + [str(c[k]) for k in KINDS]) + " |")
    lines.append("| " + " | ".join(["**all**", f"**{sum(total.values())}**"] + [f"**{total[k]}**" for k in KINDS]) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=400, help="CLI cases (each one process)")
    ap.add_argument("--studio-cases", type=int, default=300, help="requests to one studio server")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds before a CLI case counts as a hang")
    ap.add_argument("--in-process", action="store_true", help="run CLI cases inside this process (quicker look)")
    ap.add_argument("--only", action="append", default=None, help="a command (as in tests/fuzz_cases/commands.py); repeatable")
    args = ap.parse_args()
    start = time.time()
    print(f"# probe: {platform.node()} {os.cpu_count()} CPUs, python {platform.python_version()}, seed {args.seed}, "
          f"timeout {args.timeout:g} s")
    counts, bad = probe_cli(args.cases, args.seed, args.timeout, args.only, args.in_process) if args.cases else ({}, [])
    cli_minutes = (time.time() - start) / 60
    if counts:
        print(f"\n## CLI: {sum(sum(c.values()) for c in counts.values())} cases in {cli_minutes:.1f} min\n")
        print(table(counts))
    if args.studio_cases:
        s_counts, s_bad, extra = probe_studio(args.studio_cases, args.seed)
        print(f"\n## studio: {sum(s_counts.values())} requests\n")
        print(table({"studio": s_counts}))
        for k, v in extra.items():
            print(f"* {k}: {v}")
        bad += s_bad
    print(f"\ntotal {(time.time() - start) / 60:.1f} min")
    if bad:
        print("\n## not clean\n")
        for outcome, argv, last in bad:
            print(f"* {outcome}: {' '.join(repr(a) if (' ' in a or not a) else a for a in argv)}\n  -> {last}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
