#!/usr/bin/env python3
"""The benchmark behind BENCHMARKS.md; run it through `bench/run`.

For each tier (S Hangzhou 10,000 organizations, M Zhejiang 72,000, L national
900,000) it generates the departments' raw files once, then runs three
programs on the same files, in rounds (`--rounds`, 3 by default), the order
rotated from round to round so that none always runs first or last:

  baseline  `qinglian bench baseline`: DataFusion reads every raw file and
            writes it as Parquet, nothing else (the floor of ingest);
  ours      `qinglian run nightly` from the raw files to published outputs
            (push and drop off), per-stage figures from the run's ledger;
  peer      the independent DuckDB peer (`../shared/peers/duckdb/pipeline.py`,
            or `--peer DIR`), called where it lives, never copied here.

Each is timed from outside with /usr/bin/time (wall seconds, peak resident
memory of the largest process). Ratios are taken between runs of the same
invocation: the medians, the minimums, and ours over the peer round by
round. On tier S (every tier with --compare-all) the peer's `compare.py`
checks codes, profiles and hits organization by organization. Then the key
library's classification throughput is measured against a plain checksum
loop. Results go to bench/results/<tier>.json and into the tables of
BENCHMARKS.md between its `bench:` markers.
"""

import argparse
import datetime
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TIERS = {"S": 10_000, "M": 72_000, "L": 900_000}
NAMES = {"S": "Hangzhou", "M": "Zhejiang", "L": "national"}
STAGES = ["ingest", "score", "publish"]
PROGRAMS = ["baseline", "ours", "peer"]
# The peer's steps that do what our score stage does: resolution, the
# rules and the points (its `write published` is our publish).
PEER_SCORING = ["resolve", "rules", "score"]
DEFAULT_PEER = os.path.normpath(os.path.join(ROOT, "..", "shared", "peers", "duckdb"))


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


def run_ours(binary, feeds, work, date, project=ROOT, warehouse_name="warehouse",
             fresh=True, log_name="ours.log"):
    """`qinglian run nightly` on `feeds` into `work/<warehouse_name>` (emptied
    first unless `fresh` is false: then it is the next night of that warehouse)."""
    warehouse = os.path.join(work, warehouse_name)
    if fresh:
        shutil.rmtree(warehouse, ignore_errors=True)
    env = {"QINGLIAN_FEEDS": feeds, "QINGLIAN_WAREHOUSE": warehouse,
           "QINGLIAN_PERSON_KEY": "bench-person-key", "QINGLIAN_PLATFORM_URL": "",
           "QINGLIAN_PLATFORM_BUCKET": ""}
    wall, rss, _ = timed([binary, "run", "nightly", "--date", date, "--project", project], env=env,
                         stdout_path=os.path.join(work, log_name))
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
    feeds_figures = {f["feed"]: {k: f.get(k) for k in
                                 ("status", "read", "landed", "rows", "upserted", "deleted",
                                  "carried_over", "tombstones")}
                     for f in record["feeds"]}
    return {"wall_s": wall, "peak_kib": rss, "status": record["status"],
            "rows_read": rows_read, "organizations": scoring.get("profiles"),
            "hits": scoring.get("hits"), "colours": scoring.get("colours"),
            "stages": stages, "feeds": feeds_figures, "warehouse_bytes": dir_bytes(warehouse),
            "warehouse": warehouse}


def next_day(date):
    return (datetime.date.fromisoformat(date) + datetime.timedelta(days=1)).isoformat()


def incremental(binary, tier, args, feeds, work, full_median):
    """The nights that should cost what changed, after the rounds, on the
    last round's warehouse and on a warehouse of the delta project:

    unchanged  the same files again the next night: every part listed,
               found as it was and carried forward unread;
    first      the delta project's first night: every record of day 0 as
               a delta API's first answer (NDJSON, merge = upsert);
    delta      its next night: what changed from generator day 0 to day 1
               (changed records and tombstones, about 1% of the records).
    """
    day1 = os.path.join(args.data, tier, "day1")
    deltas = os.path.join(args.data, tier, "deltas")
    project = os.path.join(deltas, "project")
    marker = os.path.join(deltas, "complete.json")
    if not os.path.exists(marker):
        shutil.rmtree(day1, ignore_errors=True)
        shutil.rmtree(deltas, ignore_errors=True)
        log(f"tier {tier}: generating day 1 and the deltas")
        gen_s, _, _ = timed([binary, "generate", "--orgs", str(TIERS[tier]), "--as-of", args.date,
                             "--day", "1", "--out", day1])
        first_s, _, first_out = timed([binary, "generate-delta", "--project", ROOT, "--to", feeds,
                                       "--out", os.path.join(deltas, "day0"),
                                       "--project-out", project])
        delta_s, _, delta_out = timed([binary, "generate-delta", "--project", ROOT, "--from", feeds,
                                       "--to", day1, "--out", os.path.join(deltas, "day1")])
        with open(marker, "w") as f:
            json.dump({"generate_day1_s": gen_s, "delta_day0_s": first_s, "delta_day1_s": delta_s,
                       "delta_day0": first_out, "delta_day1": delta_out,
                       "delta_bytes": dir_bytes(os.path.join(deltas, "day1"))}, f)
    with open(marker) as f:
        prepared = json.load(f)
    warm(os.path.join(deltas, "day0"))
    warm(os.path.join(deltas, "day1"))
    tomorrow = next_day(args.date)
    log(f"tier {tier}: unchanged night")
    unchanged = run_ours(binary, feeds, work, tomorrow, fresh=False, log_name="unchanged.log")
    log(f"tier {tier}: unchanged night {unchanged['wall_s']:.1f} s")
    log(f"tier {tier}: the delta project's first night")
    first = run_ours(binary, os.path.join(deltas, "day0"), work, args.date, project=project,
                     warehouse_name="warehouse-delta", log_name="first.log")
    log(f"tier {tier}: first night {first['wall_s']:.1f} s; delta night")
    delta = run_ours(binary, os.path.join(deltas, "day1"), work, tomorrow, project=project,
                     warehouse_name="warehouse-delta", fresh=False, log_name="delta.log")
    log(f"tier {tier}: delta night {delta['wall_s']:.1f} s")
    for r in (unchanged, first, delta):
        if r["status"] not in ("succeeded", "degraded"):
            sys.exit(f"tier {tier}: an incremental night ended {r['status']}")
    if not args.keep:
        shutil.rmtree(os.path.join(work, "warehouse-delta"), ignore_errors=True)
    return {"prepared": prepared, "unchanged": unchanged, "first": first, "delta": delta,
            "unchanged_over_full": unchanged["wall_s"] / full_median,
            "delta_over_full": delta["wall_s"] / full_median,
            "delta_over_first": delta["wall_s"] / first["wall_s"]}


def run_peer(peer, feeds, work, date, memory, threads):
    out = os.path.join(work, "peer")
    shutil.rmtree(out, ignore_errors=True)
    wall, rss, _ = timed(
        [sys.executable, os.path.join(peer, "pipeline.py"), "--project", ROOT,
         "--feeds", feeds, "--out", out, "--date", date, "--threads", str(threads),
         "--memory", memory],
        env={"QINGLIAN_PERSON_KEY": "bench-person-key"},
        stdout_path=os.path.join(work, "peer.log"))
    records = sorted(glob.glob(os.path.join(out, "ledger", "*.json")))
    record = {}
    if records:
        with open(records[-1]) as f:
            record = json.load(f)
    steps = record.get("step_ms", {})
    scoring = sum(steps.get(k, 0) for k in PEER_SCORING) / 1000 if steps else None
    iconv = sum(v for k, v in steps.items() if k.startswith("iconv")) / 1000
    return {"wall_s": wall, "peak_kib": rss, "steps_ms": steps, "scoring_s": scoring,
            "iconv_s": iconv, "profiles": record.get("profiles"), "hits": record.get("hits"),
            "out": out, "written_bytes": dir_bytes(out)}


def run_baseline(binary, feeds, work):
    out = os.path.join(work, "baseline")
    shutil.rmtree(out, ignore_errors=True)
    wall, rss, stdout = timed([binary, "bench", "baseline", "--project", ROOT,
                               "--feeds", feeds, "--out", out],
                              stdout_path=os.path.join(work, "baseline.log"))
    detail = json.loads(stdout.strip().splitlines()[-1])
    return {"wall_s": wall, "peak_kib": rss, "detail": detail,
            "written_bytes": dir_bytes(out)}


def compare(peer, ours, out, work):
    """The peer's own comparison: codes, profiles and hits one by one."""
    res = subprocess.run([sys.executable, os.path.join(peer, "compare.py"), ours["warehouse"], out],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with open(os.path.join(work, "compare.log"), "w") as f:
        f.write(res.stdout)
    figures = {}
    for line in res.stdout.splitlines():
        found = re.search(r"\[\(([0-9, ]*)\)\]\s*$", line)
        if found:
            figures.setdefault(line.split(" ", 1)[0].rstrip(":"),
                               [int(x) for x in found.group(1).split(",") if x.strip()])
    codes = figures.get("codes", [0, 0, 1, 1])
    profiles = figures.get("profiles", [0, -1])
    hits = figures.get("hits", [0, -1, -2])
    # Colours and profiles must agree; hits are keyed by the evidence
    # record, which two implementations may pick differently for one
    # organization and rule (reported, not failed on).
    agree = res.returncode == 0 and codes[0] == codes[1] and codes[2] == 0 and codes[3] == 0 \
        and profiles[0] == profiles[1]
    by_rule = [l for l in res.stdout.strip().splitlines() if l.startswith("[(")]
    return {"agree": agree, "hits_agree": hits[0] == hits[1] == hits[2],
            "codes": codes, "profiles": profiles, "hits": hits,
            "hits_differing_by_rule": by_rule[-1] if by_rule else "",
            "output": res.stdout.strip().splitlines()[-8:]}


def summary(values):
    values = [v for v in values if v is not None]
    if not values:
        return {"min": None, "median": None, "all": []}
    return {"min": min(values), "median": statistics.median(values), "all": values}


def bench_tier(binary, tier, args):
    feeds, generated = generate(binary, tier, args.data, args.date)
    work = os.path.join(args.data, tier, "work")
    os.makedirs(work, exist_ok=True)
    warm(feeds)
    runs = {p: [] for p in PROGRAMS}
    per_round = []
    agreement = None
    for rnd in range(args.rounds):
        order = PROGRAMS[rnd % 3:] + PROGRAMS[:rnd % 3]
        this = {}
        for prog in order:
            log(f"tier {tier} round {rnd + 1}/{args.rounds}: {prog}")
            if prog == "baseline":
                r = run_baseline(binary, feeds, work)
            elif prog == "ours":
                r = run_ours(binary, feeds, work, args.date)
            else:
                r = run_peer(args.peer, feeds, work, args.date, args.peer_memory, args.threads)
            log(f"tier {tier} round {rnd + 1}: {prog} {r['wall_s']:.1f} s, "
                f"peak {r['peak_kib'] / 1024:,.0f} MiB")
            this[prog] = r
            runs[prog].append(r)
        per_round.append({"order": order,
                          "ours_over_peer": this["ours"]["wall_s"] / this["peer"]["wall_s"],
                          "ours_over_baseline": this["ours"]["wall_s"] / this["baseline"]["wall_s"],
                          "peer_over_baseline": this["peer"]["wall_s"] / this["baseline"]["wall_s"]})
        if rnd == args.rounds - 1 and (tier == "S" or args.compare_all):
            agreement = compare(args.peer, this["ours"], this["peer"]["out"], work)
            log(f"tier {tier}: codes, profiles and hits agree: {agreement['agree']}")
        if not args.keep or rnd < args.rounds - 1:
            if rnd < args.rounds - 1 or args.no_incremental:
                shutil.rmtree(this["ours"]["warehouse"], ignore_errors=True)
            shutil.rmtree(this["peer"]["out"], ignore_errors=True)
            shutil.rmtree(os.path.join(work, "baseline"), ignore_errors=True)
    wall = {p: summary([r["wall_s"] for r in runs[p]]) for p in PROGRAMS}
    peak = {p: summary([r["peak_kib"] for r in runs[p]]) for p in PROGRAMS}
    ratio = lambda a, b, k: wall[a][k] / wall[b][k]
    ours_stages = {st: summary([r["stages"][st]["s"] for r in runs["ours"]]) for st in STAGES}
    result = {"tier": tier, "orgs": TIERS[tier], "date": args.date, "rounds": args.rounds,
              "generated": generated, "runs": runs, "wall": wall, "peak_kib": peak,
              "per_round": per_round, "ours_stages": ours_stages,
              "peer_scoring": summary([r["scoring_s"] for r in runs["peer"]]),
              "peer_iconv": summary([r["iconv_s"] for r in runs["peer"]]),
              "ratios": {
                  "ours_over_peer": {k: ratio("ours", "peer", k) for k in ("min", "median")},
                  "ours_over_baseline": {k: ratio("ours", "baseline", k) for k in ("min", "median")},
                  "peer_over_baseline": {k: ratio("peer", "baseline", k) for k in ("min", "median")},
                  "ours_over_peer_per_round": summary([r["ours_over_peer"] for r in per_round]),
                  "ours_over_baseline_per_round": summary([r["ours_over_baseline"] for r in per_round]),
              }}
    if agreement is not None:
        result["agreement"] = agreement
    if not args.no_incremental:
        result["incremental"] = incremental(binary, tier, args, feeds, work, wall["ours"]["median"])
        if not args.keep:
            shutil.rmtree(os.path.join(work, "warehouse"), ignore_errors=True)
    return result


def mib(kib):
    return f"{kib / 1024:,.0f} MiB" if kib is not None else "–"


def size(b):
    return f"{b / 1048576:,.0f} MiB" if b is not None else "–"


def secs(s):
    return f"{s:.1f} s" if s is not None else "–"


def incremental_lines(r):
    """The unchanged and delta nights of one tier against its full night."""
    inc, full = r["incremental"], r["wall"]["ours"]["median"]
    prep = inc["prepared"]
    def feeds_line(run):
        statuses = {}
        for f in run["feeds"].values():
            statuses[f["status"]] = statuses.get(f["status"], 0) + 1
        return ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
    def totals(run, key):
        return sum((f.get(key) or 0) for f in run["feeds"].values())
    rows = [("full night (the department files; median of the rounds above)", None),
            ("unchanged night (the same files, the next date)", inc["unchanged"]),
            ("delta project, first night (every record of day 0 as NDJSON, `merge = \"upsert\"`)",
             inc["first"]),
            ("delta night (day 0 → day 1: changed records and tombstones)", inc["delta"])]
    lines = ["", "Incremental nights (one run each, after the rounds; `bench.py` `incremental`):", "",
             "| night | wall | vs full night | rows read | upserted / deleted / carried over | feeds | ingest | score | peak memory |",
             "|---|---:|---:|---:|---:|---|---:|---:|---:|"]
    for name, run in rows:
        if run is None:
            lines.append(f"| {name} | {secs(full)} | 1.00 | | | | "
                         f"{secs(r['ours_stages']['ingest']['median'])} | "
                         f"{secs(r['ours_stages']['score']['median'])} | |")
            continue
        lines.append(f"| {name} | {secs(run['wall_s'])} | **{run['wall_s'] / full:.2f}** | "
                     f"{run['rows_read']:,} | {totals(run, 'upserted'):,} / {totals(run, 'deleted'):,} / "
                     f"{totals(run, 'carried_over'):,} | {feeds_line(run)} | "
                     f"{secs(run['stages']['ingest']['s'])} | {secs(run['stages']['score']['s'])} | "
                     f"{mib(run['peak_kib'])} |")
    lines += ["", f"The delta night over the delta project's first night: "
              f"{inc['delta_over_first']:.2f}. Day 1's delta: {size(prep['delta_bytes'])} of NDJSON "
              f"(generator day 1 in {prep['generate_day1_s']:.1f} s, the deltas in "
              f"{prep['delta_day0_s']:.1f} s and {prep['delta_day1_s']:.1f} s, not timed in the nights)."]
    return lines


def render(results, keys, machine, command):
    """The markdown between the bench markers of BENCHMARKS.md."""
    lines = [f"Measured {machine['when']} on a machine of {machine['cpus']} cores and "
             f"{machine['mem_gib']} GiB (load average {machine['load']} before the run), "
             f"release build, with `{command}`: the three programs on the same files, read once "
             "beforehand into the page cache, one at a time, in rounds whose order rotates; "
             "min and median of the rounds, ratios between runs of this one invocation.", ""]
    for r in results:
        g, w, pk = r["generated"], r["wall"], r["peak_kib"]
        o = r["runs"]["ours"][-1]
        ratios = r["ratios"]
        lines += [f"### Tier {r['tier']} — {NAMES[r['tier']]}, {r['orgs']:,} organizations",
                  "",
                  f"Raw input: {g['files']} files, {size(g['bytes'])}, {o['rows_read']:,} feed rows "
                  f"(generated in {g['generate_s']:.1f} s). Organizations scored: "
                  f"{o['organizations']:,}; hits: {o['hits']:,}. {r['rounds']} rounds.", "",
                  "| | wall min | wall median | median vs peer | median vs bare baseline | peak memory (max) | written |",
                  "|---|---:|---:|---:|---:|---:|---:|",
                  f"| qinglian `run nightly` | {secs(w['ours']['min'])} | {secs(w['ours']['median'])} | "
                  f"**{ratios['ours_over_peer']['median']:.2f}** | **{ratios['ours_over_baseline']['median']:.2f}** | "
                  f"{mib(max(pk['ours']['all']))} | {size(o['warehouse_bytes'])} |",
                  f"| independent DuckDB peer | {secs(w['peer']['min'])} | {secs(w['peer']['median'])} | 1.00 | "
                  f"{ratios['peer_over_baseline']['median']:.2f} | {mib(max(pk['peer']['all']))} | "
                  f"{size(r['runs']['peer'][-1]['written_bytes'])} |",
                  f"| bare DataFusion (raw → Parquet) | {secs(w['baseline']['min'])} | {secs(w['baseline']['median'])} | "
                  f"{w['baseline']['median'] / w['peer']['median']:.2f} | 1.00 | {mib(max(pk['baseline']['all']))} | "
                  f"{size(r['runs']['baseline'][-1]['written_bytes'])} |",
                  "",
                  f"Ratios of the minimums: ours / peer {ratios['ours_over_peer']['min']:.2f}, "
                  f"ours / baseline {ratios['ours_over_baseline']['min']:.2f}. Round by round "
                  "(ours / peer, in the order run): " + ", ".join(
                      f"{x['ours_over_peer']:.2f} ({' → '.join(x['order'])})" for x in r["per_round"]) + ".",
                  "", "Our stages (from the runs' ledgers), against the peer's steps that do the same:", "",
                  "| stage | ours min | ours median | peer median |", "|---|---:|---:|---:|"]
        peer_steps = r["runs"]["peer"]
        med = lambda k: statistics.median([p["steps_ms"].get(k, 0) / 1000 for p in peer_steps])
        ingest_like = lambda p: sum(v for k, v in p["steps_ms"].items()
                                    if k not in PEER_SCORING and k != "write published") / 1000
        peer_of = {"ingest": statistics.median([ingest_like(p) for p in peer_steps]),
                   "score": r["peer_scoring"]["median"],
                   "publish": med("write published")}
        for stage in STAGES:
            s = r["ours_stages"][stage]
            if s["median"] is None:
                continue
            lines.append(f"| {stage} | {secs(s['min'])} | {secs(s['median'])} | "
                         f"{secs(peer_of.get(stage))} |")
        groups = {}
        for p in peer_steps:
            for k, v in p["steps_ms"].items():
                g = k.split(" ")[0] if k.split(" ")[0] in ("iconv", "read", "map") else k
                groups.setdefault(g, []).append((id(p), v))
        group_med = {g: statistics.median([sum(v for pid, v in vals if pid == id(p)) for p in peer_steps])
                     for g, vals in groups.items()}
        lines += ["", "The peer's ingest figure is every step but `resolve`, `rules`, `score` and "
                  "`write published`; its score figure is `resolve` + `rules` + `score`. Its steps "
                  "(medians, feeds summed): " + ", ".join(
                      f"{g} {ms / 1000:.1f} s" for g, ms in group_med.items()) + "."]
        if "incremental" in r:
            lines += incremental_lines(r)
        if "agreement" in r:
            a = r["agreement"]
            lines += ["", f"Peer against ours (its `compare.py`): colours and profiles "
                      f"{'identical' if a['agree'] else 'DIFFERENT'} — codes (total, agree, only peer, "
                      f"only ours) {a['codes']}, profiles (total, equal) {a['profiles']}; hits (union, "
                      f"both, equal) {a['hits']}"
                      + ("." if a.get("hits_agree") else
                         f", hits on one side only by rule (rule, peer only, ours only): "
                         f"`{a.get('hits_differing_by_rule', '')}`.")]
        lines.append("")
    by = {r["tier"]: r for r in results}
    if len(by) > 1:
        lines += ["### Growth from tier to tier (medians)", "",
                  "| tier | organizations | ours wall | ours per organization | peer per organization | baseline per organization |",
                  "|---|---:|---:|---:|---:|---:|"]
        for t in ["S", "M", "L"]:
            if t in by:
                r = by[t]
                per = lambda s: f"{s / r['orgs'] * 1e6:,.0f} µs"
                lines.append(f"| {t} | {r['orgs']:,} | {secs(r['wall']['ours']['median'])} | "
                             f"{per(r['wall']['ours']['median'])} | {per(r['wall']['peer']['median'])} | "
                             f"{per(r['wall']['baseline']['median'])} |")
        if "M" in by and "L" in by:
            m, l = by["M"], by["L"]
            growth = (l["wall"]["ours"]["median"] / l["orgs"]) / (m["wall"]["ours"]["median"] / m["orgs"]) - 1
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
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="the peer's DuckDB threads")
    p.add_argument("--peer", default=os.environ.get("QINGLIAN_DUCKDB_PEER", DEFAULT_PEER),
                   help="the independent DuckDB peer's folder (pipeline.py, compare.py)")
    p.add_argument("--peer-memory", default="4GB", help="the peer's DuckDB memory_limit")
    p.add_argument("--rounds", type=int, default=3, help="rounds of the three programs per tier")
    p.add_argument("--keep", action="store_true", help="keep warehouses and outputs")
    p.add_argument("--compare-all", action="store_true",
                   help="compare codes, profiles and hits with the peer's at every tier")
    p.add_argument("--no-incremental", action="store_true",
                   help="skip the unchanged and delta nights")
    p.add_argument("--no-markdown", action="store_true", help="do not rewrite BENCHMARKS.md")
    p.add_argument("--render-only", action="store_true",
                   help="rewrite BENCHMARKS.md from bench/results/ without running anything")
    args = p.parse_args()
    if not os.path.exists(os.path.join(args.peer, "pipeline.py")):
        sys.exit(f"no DuckDB peer at {args.peer} (pipeline.py); pass --peer DIR")
    load = os.getloadavg()[0]
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    tiers = [t.strip().upper() for t in args.tiers.split(",") if t.strip()]
    if args.render_only:
        results = []
        for tier in tiers:
            with open(os.path.join(HERE, "results", f"{tier}.json")) as f:
                results.append(json.load(f))
        with open(os.path.join(HERE, "results", "keys.json")) as f:
            keys = json.load(f)
        with open(os.path.join(HERE, "results", "machine.json")) as f:
            machine = json.load(f)
        block = render(results, keys, machine,
                       f"bench/run --tiers {args.tiers} --rounds {results[0]['rounds']}")
        print(block)
        if not args.no_markdown:
            write_markdown(block)
        return
    results = []
    for tier in tiers:
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
               "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
               "load": f"{load:.1f}"}
    with open(os.path.join(HERE, "results", "machine.json"), "w") as f:
        json.dump(machine, f, indent=2)
    block = render(results, keys, machine,
                   f"bench/run --tiers {args.tiers} --rounds {args.rounds}")
    print(block)
    if not args.no_markdown:
        write_markdown(block)
    if any(not r.get("agreement", {"agree": True})["agree"] for r in results):
        sys.exit("the peer's colours or profiles differ from ours; see bench/data/<tier>/work/compare.log")


if __name__ == "__main__":
    main()
