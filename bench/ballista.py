#!/usr/bin/env python3
"""Scoring on a Ballista cluster against scoring in-process, on this machine.

For each tier, in alternating rounds: a night of `qinglian run nightly`
with the local engine, then with `[engine] kind = "ballista"` on a cluster
of one scheduler and one executor, then of two executors (started fresh for
each run, all on 127.0.0.1, all the same binary). Reported: the score
stage's seconds from each run's ledger record, ratios of medians against
the local engine in this same invocation, and whether the published
profiles, hits, codes and changes are byte for byte the local run's.

  bench/ballista.py --bin target/release/qinglian --tiers M,L --rounds 2

The binary must be built with `--features ballista`; the tiers' feeds are
the ones `bench/run` generated (under bench/data unless --data says).
Writes bench/results/ballista.json.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the helpers of bench/run)

ENGINES = ["local", "ballista-1", "ballista-2"]
COMPARED = ["profiles", "hits", "codes", "changes"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A scheduler and `executors` executors of the same binary on 127.0.0.1."""

    def __init__(self, binary, executors, work, memory_mb):
        self.port = free_port()
        self.procs = []
        self.logs = os.path.join(work, "cluster-logs")
        shutil.rmtree(self.logs, ignore_errors=True)
        os.makedirs(self.logs)
        env = dict(os.environ, QINGLIAN_LOG="info")
        self._spawn(binary, ["ballista", "scheduler", "--bind", f"127.0.0.1:{self.port}"],
                    "scheduler", env)
        self._wait("scheduler", "Ballista scheduler listening", 1)
        for i in range(executors):
            self._spawn(binary, ["ballista", "executor", "--scheduler", self.url(),
                                 "--bind", f"127.0.0.1:{free_port()}",
                                 "--grpc-port", str(free_port()),
                                 "--memory-mb", str(memory_mb),
                                 "--work-dir", os.path.join(work, f"executor-{i}")],
                        f"executor-{i}", env)
        self._wait("scheduler", "Received register executor request", executors)

    def url(self):
        return f"df://127.0.0.1:{self.port}"

    def _spawn(self, binary, args, name, env):
        log = open(os.path.join(self.logs, f"{name}.log"), "w")
        self.procs.append(subprocess.Popen([binary] + args, env=env, stdout=subprocess.DEVNULL,
                                           stderr=log, stdin=subprocess.DEVNULL))

    def log(self, name):
        with open(os.path.join(self.logs, f"{name}.log"), errors="replace") as f:
            return f.read()

    def _wait(self, name, what, times):
        deadline = time.time() + 120
        while self.log(name).count(what) < times:
            if time.time() > deadline:
                sys.exit(f"{name} did not log {what!r}:\n{self.log(name)[-4000:]}")
            time.sleep(0.2)

    def jobs(self):
        return self.log("scheduler").count("Job finished successfully")

    def stop(self):
        for p in self.procs:
            p.kill()
            p.wait()


def cluster_project(work):
    """The shipped project with the nightly pipeline on `${QINGLIAN_SCHEDULER}`."""
    project = os.path.join(work, "cluster-project")
    shutil.rmtree(project, ignore_errors=True)
    for sub in ["schemas", "pipelines", "jobs"]:
        shutil.copytree(os.path.join(bench.ROOT, sub), os.path.join(project, sub))
    with open(os.path.join(project, "pipelines", "nightly.toml"), "a") as f:
        f.write('\n[engine]\nkind = "ballista"\nurl = "df://${QINGLIAN_SCHEDULER}"\n'
                'target_partitions = 4\n')
    return project


def published_sums(warehouse, date):
    """sha256 of each compared dataset's files in the newest manifest of `date`."""
    manifests = sorted(
        os.path.join(base, name)
        for base, _, files in os.walk(os.path.join(warehouse, "published", "manifests"))
        for name in files if name.endswith(".json") and f"dt={date}" in base)
    with open(manifests[-1]) as f:
        manifest = json.load(f)
    return {d: [x["sha256"] for x in manifest["datasets"][d]["files"]] for d in COMPARED}


def score_s(r):
    return r["stages"]["score"]["s"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--bin", required=True, help="qinglian built with --features ballista")
    p.add_argument("--tiers", default="M", help="comma-separated, of S, M, L")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--data", default=os.path.join(bench.HERE, "data"))
    p.add_argument("--date", default="2026-11-28")
    p.add_argument("--executor-memory-mb", type=int, default=2048)
    args = p.parse_args()
    results = {}
    for tier in args.tiers.split(","):
        feeds = os.path.join(args.data, tier, "feeds")
        if not os.path.exists(os.path.join(args.data, tier, "complete.json")):
            sys.exit(f"no generated tier {tier} under {args.data}: run bench/run --tiers {tier} first")
        work = tempfile.mkdtemp(prefix=f"ballista-{tier}-", dir=os.path.join(args.data, tier))
        project = cluster_project(work)
        bench.warm(feeds)
        runs = {e: [] for e in ENGINES}
        agree = True
        jobs = {}
        for rnd in range(args.rounds):
            order = ENGINES[rnd % 3:] + ENGINES[:rnd % 3]
            for engine in order:
                bench.log(f"tier {tier} round {rnd + 1}/{args.rounds}: {engine}")
                if engine == "local":
                    r = bench.run_ours(args.bin, feeds, work, args.date, warehouse_name="local")
                else:
                    cluster = Cluster(args.bin, int(engine[-1]), work, args.executor_memory_mb)
                    os.environ["QINGLIAN_SCHEDULER"] = cluster.url()[len("df://"):]
                    try:
                        r = bench.run_ours(args.bin, feeds, work, args.date, project=project,
                                           warehouse_name=engine, log_name=f"{engine}.log")
                        jobs[engine] = cluster.jobs()
                    finally:
                        cluster.stop()
                if r["status"] != "succeeded":
                    sys.exit(f"tier {tier} {engine}: run {r['status']}")
                r["sums"] = published_sums(r["warehouse"], args.date)
                bench.log(f"tier {tier} {engine}: score {score_s(r):.1f} s, "
                          f"night {r['wall_s']:.1f} s")
                runs[engine].append(r)
            local = runs["local"][-1]["sums"]
            for engine in ENGINES[1:]:
                if runs[engine][-1]["sums"] != local:
                    agree = False
                    bench.log(f"tier {tier} {engine}: published other bytes than local")
        medians = {e: statistics.median(score_s(r) for r in runs[e]) for e in ENGINES}
        results[tier] = {
            "score_s": {e: [score_s(r) for r in runs[e]] for e in ENGINES},
            "night_s": {e: [r["wall_s"] for r in runs[e]] for e in ENGINES},
            "median_score_s": medians,
            "ratio_to_local": {e: medians[e] / medians["local"] for e in ENGINES},
            "jobs": jobs,
            "identical": agree,
            "organizations": runs["local"][0]["organizations"],
        }
        shutil.rmtree(work, ignore_errors=True)
        bench.log(f"tier {tier}: {json.dumps(results[tier]['ratio_to_local'])}, identical {agree}")
    os.makedirs(os.path.join(bench.HERE, "results"), exist_ok=True)
    with open(os.path.join(bench.HERE, "results", "ballista.json"), "w") as f:
        json.dump(results, f, indent=2)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
