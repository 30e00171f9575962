#!/usr/bin/env python3
"""Compare our published integrity codes with the DuckDB peer's.

Reads our codes (and hits) for a business date through the warehouse's
manifest (the highest attempt of the date; every file's SHA-256 checked as
our readers do) and DuckDB's codes.parquet (and hits.parquet), prints the
organizations per colour on both sides and every organization whose colour
differs (10 examples, with the rule ids each side hit). Exit 1 on any
difference, 0 when the colours agree.

    python3 bench/duckdb/compare.py --ours /tmp/bench-s/warehouse \
        --duckdb /tmp/bench-s/duckdb --date 2026-11-28
"""

import argparse
import hashlib
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow.parquet as pq

COLOURS = ["green", "yellow", "orange", "red"]


def latest_manifest(warehouse, date):
    """The manifest of the date's highest attempt."""
    manifests = sorted((warehouse / "published" / "manifests" / f"dt={date}").glob("*.json"))
    if not manifests:
        raise SystemExit(f"no published manifest for {date} under {warehouse}")
    docs = [json.loads(p.read_text()) for p in manifests]
    return max(docs, key=lambda m: m["attempt"])


def read_dataset(warehouse, manifest, dataset, columns):
    """Rows of a published dataset, every file verified against its checksum."""
    rows = []
    for f in manifest["datasets"][dataset]["files"]:
        path = warehouse / f["path"]
        if hashlib.sha256(path.read_bytes()).hexdigest() != f["sha256"]:
            raise SystemExit(f"{path}: checksum differs from the manifest")
        rows.extend(pq.read_table(path, columns=columns).to_pylist())
    return rows


def rules_by_org(rows):
    out = defaultdict(set)
    for r in rows:
        out[r["uscc"]].add(r["rule_id"] if r.get("confidence", "high") == "high" else r["rule_id"] + "(low)")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ours", required=True, type=Path, help="our warehouse")
    ap.add_argument("--duckdb", required=True, type=Path, help="pipeline.py's --out")
    ap.add_argument("--date", required=True)
    args = ap.parse_args()

    manifest = latest_manifest(args.ours, args.date)
    ours = {r["uscc"]: r["colour"] for r in read_dataset(args.ours, manifest, "codes", ["uscc", "colour"])}
    our_hits = rules_by_org(read_dataset(args.ours, manifest, "hits", ["uscc", "rule_id", "confidence"]))
    theirs = {r["uscc"]: r["colour"]
              for r in pq.read_table(args.duckdb / "codes.parquet", columns=["uscc", "colour"]).to_pylist()}
    their_hits = rules_by_org(pq.read_table(args.duckdb / "hits.parquet",
                                            columns=["uscc", "rule_id", "confidence"]).to_pylist())

    print(f"ours:   {manifest['run_id']} ({args.ours})")
    print(f"duckdb: {args.duckdb / 'codes.parquet'}")
    co, ct = Counter(ours.values()), Counter(theirs.values())
    print(f"{'colour':<8}{'ours':>8}{'duckdb':>8}")
    for c in COLOURS + sorted((set(co) | set(ct)) - set(COLOURS)):
        print(f"{c:<8}{co[c]:>8}{ct[c]:>8}")
    print(f"{'total':<8}{len(ours):>8}{len(theirs):>8}")

    differ = sorted(u for u in set(ours) | set(theirs) if ours.get(u) != theirs.get(u))
    print(f"organizations whose colour differs: {len(differ)}")
    for u in differ[:10]:
        print(f"  {u}  ours {ours.get(u) or 'no code'} {sorted(our_hits.get(u, []))}"
              f"  duckdb {theirs.get(u) or 'no code'} {sorted(their_hits.get(u, []))}")

    # Not part of the verdict, but where a difference starts: hits per rule.
    rule_counts = lambda hits: Counter(r for rs in hits.values() for r in rs)
    ro, rt = rule_counts(our_hits), rule_counts(their_hits)
    hit_diff = {r: (ro[r], rt[r]) for r in sorted(set(ro) | set(rt)) if ro[r] != rt[r]}
    if hit_diff:
        print("organizations hit per rule where the counts differ (ours, duckdb):")
        for r, (a, b) in hit_diff.items():
            print(f"  {r:<12}{a:>8}{b:>8}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
