#!/usr/bin/env python3
"""The benchmark behind BENCHMARKS.md; run it through `bench/run`.

For each tier (S Hangzhou 10,000 organizations, M Zhejiang 72,000, L national
900,000) it generates the departments' raw files once, then runs on the same
files, one after the other:

  baseline  `qinglian bench baseline`: DataFusion reads every raw file and
            writes it as Parquet, nothing else (the floor of ingest);
  ours      `qinglian run nightly` from the raw files to published outputs
            (push and drop off), per-stage figures from the run's ledger;
  duckdb    bench/duckdb/pipeline.py: the same work in DuckDB SQL.

Each is timed from outside with /usr/bin/time (wall seconds, peak resident
memory of the process tree's largest process). On tier S the colours of
DuckDB and ours are compared organization by organization. Then the key
library's classification throughput is measured against a plain checksum
loop. Results go to bench/results/<tier>.json and into the tables of
BENCHMARKS.md between its `bench:` markers.
"""

import argparse
import datetime
import glob
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TIERS = {"S": 10_000, "M": 72_000, "L": 900_000}
NAMES = {"S": "Hangzhou", "M": "Zhejiang", "L": "national"}
STAGES = ["ingest", "score", "publish"]


def log(msg):
    print(f"[bench {datetime.datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def timed(cmd, env=None, cwd=ROOT, stdout_path=None):
    """Runs cmd under /usr/bin/time; returns (wall s, peak RSS KiB, stdout)."""
    tfile = os.path.join(HERE, ".time")
    full = ["/usr/bin/time", "-f", "%e %M", "-o", tfile] + cmd
    run_env = dict(os.environ)
    run_env.update(env or {})
    out = subprocess.run(full, env=run_env, cwd=cwd, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    if stdout_path:
        with open(stdout_path, "w") as f:
            f.write(out.stdout + "\n--- stderr ---\n" + out.stderr[-20000:])
    if out.returncode not in (0, 3):
        sys.exit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr[-4000:]}")
    with open(tfile) as f:
        wall, rss = f.read().split()[-2:]
    os.remove(tfile)
    return float(wall), int(rss), out.stdout


def dir_bytes(path):
    total = 0
    for base, _, files in os.walk(path):
        for name in files:
            total += os.path.getsize(os.path.join(base, name))
    return total


def generate(binary, tier, data, date):
    feeds = os.path.join(data, tier, "feeds")
    marker = os.path.join(data, tier, "complete.json")
    if os.path.exists(marker):
        with open(marker) as f:
            done = json.load(f)
        if done.get("orgs") == TIERS[tier] and done.get("as_of") == date:
            return feeds, done
    shutil.rmtree(os.path.join(data, tier), ignore_errors=True)
    log(f"tier {tier}: generating {TIERS[tier]:,} organizations into {feeds}")
    wall, rss, _ = timed([binary, "generate", "--orgs", str(TIERS[tier]),
                          "--as-of", date, "--out", feeds])
    done = {"orgs": TIERS[tier], "as_of": date, "generate_s": wall,
            "generate_peak_kib": rss, "bytes": dir_bytes(feeds),
            "files": sum(len(fs) for _, _, fs in os.walk(feeds))}
    with open(marker, "w") as f:
        json.dump(done, f)
    return feeds, done


def warm(feeds):
    """Reads every raw file once, so that all three start from the page cache."""
    for base, _, files in os.walk(feeds):
        for name in files:
            with open(os.path.join(base, name), "rb") as f:
                while f.read(1 << 22):
                    pass


def run_ours(binary, feeds, work, date):
    warehouse = os.path.join(work, "warehouse")
    shutil.rmtree(warehouse, ignore_errors=True)
    env = {"QINGLIAN_FEEDS": feeds, "QINGLIAN_WAREHOUSE": warehouse,
           "QINGLIAN_PERSON_KEY": "bench-person-key", "QINGLIAN_PLATFORM_URL": "",
           "QINGLIAN_PLATFORM_BUCKET": ""}
    wall, rss, _ = timed([binary, "run", "nightly", "--date", date], env=env,
                         stdout_path=os.path.join(work, "ours.log"))
    records = sorted(glob.glob(os.path.join(warehouse, "ledger", "runs", f"dt={date}", "*.json")))
    with open(records[-1]) as f:
        record = json.load(f)
    rows_read = sum(feed["read"] for feed in record["feeds"])
    scoring = record.get("scoring") or {}
    stages = {}
    for stage in STAGES:
        usage = record.get("stage_usage", {}).get(stage, {})
        ms = record.get("stage_ms", {}).get(stage)
        rows = {"ingest": rows_read, "score": scoring.get("profiles", 0),
                "publish": scoring.get("profiles", 0)}[stage]
        stages[stage] = {"s": ms / 1000 if ms is not None else None,
                         "rows": rows,
                         "rows_per_s": rows / (ms / 1000) if ms else None,
                         "peak_kib": usage.get("peak_rss_kib"),
                         "read_bytes": usage.get("read_bytes"),
                         "written_bytes": usage.get("written_bytes")}
    return {"wall_s": wall, "peak_kib": rss, "status": record["status"],
            "rows_read": rows_read, "organizations": scoring.get("profiles"),
            "hits": scoring.get("hits"), "colours": scoring.get("colours"),
            "stages": stages, "warehouse_bytes": dir_bytes(warehouse),
            "warehouse": warehouse}


def run_duckdb(feeds, work, date, memory_limit, threads):
    out = os.path.join(work, "duckdb")
    shutil.rmtree(out, ignore_errors=True)
    wall, rss, stdout = timed(
        [sys.executable, os.path.join(HERE, "duckdb", "pipeline.py"), "--project", ROOT,
         "--feeds", feeds, "--out", out, "--date", date, "--threads", str(threads),
         "--memory-limit", memory_limit],
        env={"QINGLIAN_PERSON_KEY": "bench-person-key"},
        stdout_path=os.path.join(work, "duckdb.log"))
    lines = [l for l in stdout.splitlines() if l.strip().startswith("{")]
    detail = json.loads(lines[-1]) if lines else {}
    return {"wall_s": wall, "peak_kib": rss, "detail": detail, "out": out,
            "written_bytes": dir_bytes(out)}


def run_baseline(binary, feeds, work):
    out = os.path.join(work, "baseline")
    shutil.rmtree(out, ignore_errors=True)
    wall, rss, stdout = timed([binary, "bench", "baseline", "--project", ROOT,
                               "--feeds", feeds, "--out", out],
                              stdout_path=os.path.join(work, "baseline.log"))
    detail = json.loads(stdout.strip().splitlines()[-1])
    return {"wall_s": wall, "peak_kib": rss, "detail": detail,
            "written_bytes": dir_bytes(out)}


def compare(ours, duck, date, work):
    out = subprocess.run(
        [sys.executable, os.path.join(HERE, "duckdb", "compare.py"), "--ours", ours["warehouse"],
         "--duckdb", duck["out"], "--date", date],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with open(os.path.join(work, "compare.log"), "w") as f:
        f.write(out.stdout)
    return {"agree": out.returncode == 0, "output": out.stdout.strip().splitlines()[-12:]}


def bench_tier(binary, tier, args):
    feeds, generated = generate(binary, tier, args.data, args.date)
    work = os.path.join(args.data, tier, "work")
    os.makedirs(work, exist_ok=True)
    warm(feeds)
    log(f"tier {tier}: bare DataFusion baseline")
    baseline = run_baseline(binary, feeds, work)
    log(f"tier {tier}: baseline {baseline['wall_s']:.1f} s; our pipeline")
    ours = run_ours(binary, feeds, work, args.date)
    log(f"tier {tier}: ours {ours['wall_s']:.1f} s ({ours['status']}); DuckDB")
    duck = run_duckdb(feeds, work, args.date, args.duckdb_memory, args.threads)
    log(f"tier {tier}: duckdb {duck['wall_s']:.1f} s")
    result = {"tier": tier, "orgs": TIERS[tier], "date": args.date,
              "generated": generated, "baseline": baseline, "ours": ours, "duckdb": duck,
              "ratios": {"ours_over_duckdb": ours["wall_s"] / duck["wall_s"],
                         "ours_over_baseline": ours["wall_s"] / baseline["wall_s"],
                         "duckdb_over_baseline": duck["wall_s"] / baseline["wall_s"]}}
    if tier == "S" or args.compare_all:
        result["agreement"] = compare(ours, duck, args.date, work)
        log(f"tier {tier}: colours agree: {result['agreement']['agree']}")
    if not args.keep:
        shutil.rmtree(ours["warehouse"], ignore_errors=True)
        shutil.rmtree(duck["out"], ignore_errors=True)
        shutil.rmtree(os.path.join(work, "baseline"), ignore_errors=True)
    return result


def mib(kib):
    return f"{kib / 1024:,.0f} MiB" if kib is not None else "–"


def size(b):
    return f"{b / 1048576:,.0f} MiB" if b is not None else "–"


def render(results, keys, machine, command):
    """The markdown between the bench markers of BENCHMARKS.md."""
    lines = [f"Measured {machine['when']} on a machine of {machine['cpus']} cores and "
             f"{machine['mem_gib']} GiB, release build, with `{command}`; "
             "one run of each, in the order baseline, ours, DuckDB, on the same files "
             "read once beforehand into the page cache.", ""]
    for r in results:
        g, o, d, b = r["generated"], r["ours"], r["duckdb"], r["baseline"]
        lines += [f"### Tier {r['tier']} — {NAMES[r['tier']]}, {r['orgs']:,} organizations",
                  "",
                  f"Raw input: {g['files']} files, {size(g['bytes'])}, {o['rows_read']:,} feed rows "
                  f"(generated in {g['generate_s']:.1f} s). Organizations scored: "
                  f"{o['organizations']:,}; hits: {o['hits']:,}.", "",
                  "| | wall | vs DuckDB | vs bare baseline | peak memory | written |",
                  "|---|---:|---:|---:|---:|---:|",
                  f"| qinglian `run nightly` | {o['wall_s']:.1f} s | {r['ratios']['ours_over_duckdb']:.2f} | "
                  f"{r['ratios']['ours_over_baseline']:.2f} | {mib(o['peak_kib'])} | {size(o['warehouse_bytes'])} |",
                  f"| DuckDB (same work in SQL) | {d['wall_s']:.1f} s | 1.00 | "
                  f"{r['ratios']['duckdb_over_baseline']:.2f} | {mib(d['peak_kib'])} | {size(d['written_bytes'])} |",
                  f"| bare DataFusion (raw → Parquet) | {b['wall_s']:.1f} s | "
                  f"{b['wall_s'] / d['wall_s']:.2f} | 1.00 | {mib(b['peak_kib'])} | {size(b['written_bytes'])} |",
                  "", "Our stages (from the run's ledger):", "",
                  "| stage | wall | rows | rows/s | peak memory | read | written |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for stage in STAGES:
            s = o["stages"][stage]
            if s["s"] is None:
                continue
            lines.append(f"| {stage} | {s['s']:.1f} s | {s['rows']:,} | "
                         f"{(s['rows_per_s'] or 0):,.0f} | {mib(s['peak_kib'])} | "
                         f"{size(s['read_bytes'])} | {size(s['written_bytes'])} |")
        if d["detail"].get("stages"):
            lines += ["", "DuckDB's stages: " + ", ".join(
                f"{k} {v:.1f} s" for k, v in d["detail"]["stages"].items()
                if isinstance(v, (int, float)))]
        if "agreement" in r:
            a = r["agreement"]
            lines += ["", f"Colours, DuckDB against ours: {'identical' if a['agree'] else 'DIFFERENT'} "
                      f"(`bench/duckdb/compare.py`: {a['output'][-1] if a['output'] else ''})."]
        lines.append("")
    by = {r["tier"]: r for r in results}
    if len(by) > 1:
        lines += ["### Growth from tier to tier", "",
                  "| tier | organizations | ours wall | ours per organization | DuckDB per organization | baseline per organization |",
                  "|---|---:|---:|---:|---:|---:|"]
        for t in ["S", "M", "L"]:
            if t in by:
                r = by[t]
                per = lambda s: f"{s / r['orgs'] * 1e6:,.0f} µs"
                lines.append(f"| {t} | {r['orgs']:,} | {r['ours']['wall_s']:.1f} s | {per(r['ours']['wall_s'])} | "
                             f"{per(r['duckdb']['wall_s'])} | {per(r['baseline']['wall_s'])} |")
        if "M" in by and "L" in by:
            m, l = by["M"], by["L"]
            growth = (l["ours"]["wall_s"] / l["orgs"]) / (m["ours"]["wall_s"] / m["orgs"]) - 1
            lines += ["", f"Our per-organization cost from M to L: {growth * 100:+.0f}%."]
        lines.append("")
    if keys:
        lines += ["### Key classification", "",
                  f"`qinglian bench keys`: {keys['codes']:,} codes in Arrow arrays of 8,192, "
                  f"{keys['dirty']:,} of them in dirty forms, one core, best of 5 passes.", "",
                  "| | codes per second |", "|---|---:|",
                  f"| `uscc_class` (normalize, both checks, class) | {keys['classify_per_second']:,.0f} |",
                  f"| plain mod-31 checksum loop | {keys['checksum_per_second']:,.0f} |",
                  "", f"Ratio: {keys['ratio']:.2f} of the plain loop.", ""]
    return "\n".join(lines)


def write_markdown(block):
    path = os.path.join(ROOT, "BENCHMARKS.md")
    with open(path) as f:
        text = f.read()
    begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    with open(path, "w") as f:
        f.write(head + begin + "\n" + block + "\n" + end + tail)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bin", required=True, help="the release qinglian binary")
    p.add_argument("--tiers", default="S,M,L")
    p.add_argument("--data", default=os.path.join(HERE, "data"),
                   help="generated feeds and work folders (large at tier L)")
    p.add_argument("--date", default="2026-11-28")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--duckdb-memory", default="4GB", help="DuckDB's memory_limit")
    p.add_argument("--keep", action="store_true", help="keep warehouses and outputs")
    p.add_argument("--compare-all", action="store_true", help="compare colours at every tier")
    p.add_argument("--no-markdown", action="store_true", help="do not rewrite BENCHMARKS.md")
    args = p.parse_args()
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    results = []
    for tier in [t.strip().upper() for t in args.tiers.split(",") if t.strip()]:
        result = bench_tier(args.bin, tier, args)
        with open(os.path.join(HERE, "results", f"{tier}.json"), "w") as f:
            json.dump(result, f, indent=2)
        results.append(result)
    log("key classification throughput")
    keys = json.loads(subprocess.run([args.bin, "bench", "keys"], check=True,
                                     stdout=subprocess.PIPE, text=True).stdout)
    with open(os.path.join(HERE, "results", "keys.json"), "w") as f:
        json.dump(keys, f, indent=2)
    machine = {"when": datetime.date.today().isoformat(),
               "cpus": os.cpu_count(),
               "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)}
    block = render(results, keys, machine, "bench/run --tiers " + args.tiers)
    print(block)
    if not args.no_markdown:
        write_markdown(block)
    if any(not r.get("agreement", {"agree": True})["agree"] for r in results):
        sys.exit("colours differ between DuckDB and ours; see bench/data/<tier>/work/compare.log")


if __name__ == "__main__":
    main()
