#!/usr/bin/env python3
"""The qinglian nightly work (map, validate, land, resolve, score) in DuckDB.

A peer implementation for benchmarking our Rust pipeline against DuckDB on
the same raw department files. The work is SQL in the files beside this
script; Python reads the project's TOML files, fills the templates in and
times the stages:

  read/map  map_<feed>.sql      raw files -> typed columns (GB18030 is
                                transcoded here first, and counted)
  keys      land.sql, spine.sql key classes, org-code resolution, quarantine,
            resolve.sql         exact duplicates, name matching
  rules     rule.sql            every rule of pipelines/rules/*.toml
  score     score.sql           hits, points, red lines, colours
  write     write*.sql          Parquet outputs

The last line of standard output is one JSON object with the stage times
(wall seconds) and row counts.

    python3 bench/duckdb/pipeline.py --project . --feeds /tmp/bench-s/feeds \
        --out /tmp/bench-s/duckdb --date 2026-11-28 [--threads N] [--memory-limit 4GB] \
        [--temp-dir DIR]

Tables live in a database file in a temporary folder (<out>/_tmp, or a new
folder inside --temp-dir), where DuckDB also spills; see README.md, Memory.
"""

import argparse
import calendar
import contextlib
import datetime as dt
import glob
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent

# schemas/*.toml type -> DuckDB type of the landed column.
DUCKDB_TYPES = {
    "string": "VARCHAR",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "float64": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP WITH TIME ZONE",
}

# Columns every canonical table starts with (src/project/model.rs).
STANDARD_COLUMNS = [
    ("uscc", "VARCHAR"),
    ("uscc_raw", "VARCHAR"),
    ("key_class", "VARCHAR"),
    ("subject_name", "VARCHAR"),
    ("subject_name_key", "VARCHAR"),
    ("source_record_id", "VARCHAR"),
    ("fetched_at", "TIMESTAMP WITH TIME ZONE"),
]


def sql_string(s):
    """A SQL string literal."""
    return "'" + s.replace("'", "''") + "'"


def load_toml(path):
    with open(path, "rb") as f:
        return tomllib.load(f)


def template(name, **values):
    """The SQL file `name` with its {placeholders} filled in (comment lines,
    which name the placeholders, are left as they are)."""
    lines = (HERE / name).read_text(encoding="utf-8").splitlines(keepends=True)
    out = []
    for line in lines:
        if not line.lstrip().startswith("--"):
            for key, value in values.items():
                line = line.replace("{" + key + "}", value)
        out.append(line)
    return "".join(out)


def feed_files(source, feeds_dir):
    """The files behind an object-store source URL, ${VAR:-default} read as --feeds."""
    url = re.sub(r"\$\{QINGLIAN_FEEDS(:-[^}]*)?\}", lambda _: str(feeds_dir), source["source"]["url"])
    url = url.removeprefix("file://")
    files = sorted(glob.glob(url))
    if not files:
        raise SystemExit(f"feed {source['feed']}: no file matches {url}")
    return files


def transcode_gb18030(files, tmp_dir, feed):
    """GB18030 -> UTF-8 copies: DuckDB reads GB18030 only through a downloaded extension."""
    out = []
    for i, path in enumerate(files):
        target = tmp_dir / f"{feed}-{i}.csv"
        with open(path, "rb") as src:
            target.write_text(src.read().decode("gb18030", errors="replace"), encoding="utf-8")
        out.append(str(target))
    return out


def json_pointer_columns(pointer):
    """A JSON pointer to a document's record array (`/result/records`) as
    read_json's columns ({'result': 'STRUCT("records" JSON[])'}) and the
    path to the array in its rows ("result"."records")."""
    if not pointer.startswith("/"):
        raise SystemExit(f"records: {pointer!r} is not a JSON pointer")
    keys = [k.replace("~1", "/").replace("~0", "~") for k in pointer[1:].split("/")]
    ident = lambda k: '"' + k.replace('"', '""') + '"'
    column_type = "JSON[]"
    for key in reversed(keys[1:]):
        column_type = f"STRUCT({ident(key)} {column_type})"
    columns = "{" + sql_string(keys[0]) + ": " + sql_string(column_type) + "}"
    return columns, ".".join(ident(k) for k in keys)


def duckdb_type(spec):
    t = spec["type"]
    m = re.fullmatch(r"decimal\((\d+),\s*(\d+)\)", t)
    return f"DECIMAL({m[1]},{m[2]})" if m else DUCKDB_TYPES[t]


def rule_sql(rule, business_date):
    """A rule's SQL for a business date, as src/project/model.rs `render_sql`
    and src/score/mod.rs `windowed_sql` build it, then rewritten for DuckDB."""
    year_start = business_date.replace(month=1, day=1)
    five_years_ago = months_back(business_date, 60)
    date = lambda d: f"DATE '{d.isoformat()}'"
    sql = (
        rule["sql"]
        .replace("{business_date}", date(business_date))
        .replace("{year_start}", date(year_start))
        .replace("{report_year}", str(business_date.year - 1))
        .replace("{five_years_ago}", date(five_years_ago))
    )
    window = {"calendar_year": (year_start, business_date), "five_years": (five_years_ago, business_date)}
    if rule["window"] in window:
        start, end = window[rule["window"]]
        sql = f"SELECT * FROM ({sql}) AS hits WHERE event_date BETWEEN {date(start)} AND {date(end)}"
    return decimal_literals_as_double(sql)


def months_back(d, months):
    """chrono's checked_sub_months: the same day, clamped to the month's end."""
    y, m = divmod(d.year * 12 + d.month - 1 - months, 12)
    return dt.date(y, m + 1, min(d.day, calendar.monthrange(y, m + 1)[1]))


def decimal_literals_as_double(sql):
    """The one dialect rewrite the rules need. DataFusion (ours) reads a
    literal like 0.70 as a DOUBLE (sql_parser.parse_float_as_decimal is
    false by default), DuckDB as an exact DECIMAL; thresholds such
    as `previous_year_income * 0.70` therefore compare in floating point in
    our pipeline. Outside string literals, each such literal is cast to DOUBLE
    so both engines compare the same values."""
    parts = re.split(r"('(?:[^']|'')*')", sql)
    for i in range(0, len(parts), 2):
        parts[i] = re.sub(r"(?<![\w.])(\d+\.\d+)(?![\w.])", r"CAST(\1 AS DOUBLE)", parts[i])
    return "".join(parts)


class Stages:
    """Wall time per stage."""

    def __init__(self):
        self.seconds = {}

    @contextlib.contextmanager
    def run(self, name):
        start = time.perf_counter()
        yield
        self.seconds[name] = round(self.seconds.get(name, 0) + time.perf_counter() - start, 3)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", required=True, type=Path)
    ap.add_argument("--feeds", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--date", required=True, type=dt.date.fromisoformat)
    ap.add_argument("--pipeline", default="nightly")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--memory-limit")
    ap.add_argument("--temp-dir", type=Path,
                    help="the working database, spilled data and transcoded copies (default: <out>/_tmp)")
    args = ap.parse_args()

    project = args.project.resolve()
    pipeline = load_toml(project / "pipelines" / f"{args.pipeline}.toml")
    feeds = pipeline["sources"]
    if feeds[0] != "registry":
        raise SystemExit("the registry must be the pipeline's first feed: it is the spine")
    sources = {f: load_toml(project / "pipelines" / "sources" / f"{f}.toml") for f in feeds}
    schemas = {f: load_toml(project / "schemas" / f"{sources[f]['schema']}.toml") for f in feeds}
    rule_files = [(name, load_toml(project / "pipelines" / "rules" / f"{name}.toml")) for name in pipeline["rules"]]
    scoring = pipeline["scoring"]

    out = args.out.resolve()
    (out / "landing").mkdir(parents=True, exist_ok=True)
    if args.temp_dir:
        args.temp_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix="qinglian-duckdb-", dir=args.temp_dir.resolve()))
    else:
        tmp = out / "_tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()

    # Tables live in a database file in the temporary folder, not in memory:
    # the staged feeds of a large tier (the court's records alone are GBs)
    # do not fit a memory limit of a few GB; a file-backed table's blocks are
    # compressed and written out, so the buffer manager can drop them.
    # Operators (joins, aggregates, sorts) spill to the same folder.
    con = duckdb.connect(str(tmp / "work.duckdb"))
    if args.threads:
        con.execute(f"SET threads = {int(args.threads)}")
    if args.memory_limit:
        con.execute(f"SET memory_limit = {sql_string(args.memory_limit)}")
    con.execute(f"SET temp_directory = {sql_string(str(tmp / 'spill'))}")
    # No result depends on the physical order of rows (every output that has
    # an order says so with ORDER BY); keeping it costs memory in parallel
    # scans and table writes.
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET TimeZone = 'UTC'")
    person_key = os.environ.get(pipeline.get("person_hash_key_env", "QINGLIAN_PERSON_KEY"), "bench-key")
    con.execute(f"SET VARIABLE person_key = {sql_string(person_key)}")
    con.execute(f"SET VARIABLE business_date = DATE '{args.date.isoformat()}'")
    con.execute(f"SET VARIABLE start_points = {int(scoring['start_points'])}")
    rules_text = "".join((project / "pipelines" / "rules" / f"{n}.toml").read_text() for n, _ in rule_files)
    rules_version = hashlib.sha256((rules_text + json.dumps(scoring, sort_keys=True)).encode()).hexdigest()[:16]
    con.execute(f"SET VARIABLE rules_version = {sql_string(rules_version)}")
    for name in ("keys.sql", "coerce.sql", "setup.sql"):
        con.execute(template(name))

    stages = Stages()

    # READ/MAP: every feed's raw files to typed, not yet validated columns.
    feed_seconds = {feed: {} for feed in feeds}
    with stages.run("read_map"):
        for feed in feeds:
            t = time.perf_counter()
            source = sources[feed]
            files = feed_files(source, args.feeds.resolve())
            if source["source"].get("encoding", "utf-8").lower() == "gb18030":
                files = transcode_gb18030(files, tmp, feed)
            records = source["source"].get("records", "")
            records_columns, records_array = json_pointer_columns(records) if records else ("", "")
            con.execute(template(
                f"map_{feed}.sql",
                files="[" + ", ".join(sql_string(f) for f in files) + "]",
                records=sql_string(records),
                records_columns=records_columns,
                records_array=records_array,
                max_object_size=str(max(os.path.getsize(f) for f in files) + 1024),
            ))
            feed_seconds[feed]["read_map"] = round(time.perf_counter() - t, 3)

    # KEYS: classify, resolve, quarantine, de-duplicate and land; the
    # registry first, then every feed resolved against it. The staged and
    # checked rows are dropped once a feed has landed and been counted.
    counts = {}
    with stages.run("keys"):
        for feed in feeds:
            t = time.perf_counter()
            own = [c["name"] for c in schemas[feed]["columns"]]
            con.execute(template("land.sql", feed=feed, columns=", ".join(f'"{c}"' for c in own)))
            con.execute(f"DROP TABLE stage_{feed}")
            counts[feed] = feed_counts(con, feed)
            con.execute(f"DROP TABLE checked_{feed}")
            con.execute(template("spine.sql") if feed == "registry" else template("resolve.sql", feed=feed))
            check_landed_schema(con, feed, schemas[feed])
            feed_seconds[feed]["keys"] = round(time.perf_counter() - t, 3)

    # RULES: every rule of the pipeline's rule files.
    with stages.run("rules"):
        rules = []
        for _, doc in rule_files:
            for rule in doc.get("rule", []):
                rules.append(rule)
                try:
                    con.execute(template("rule.sql", rule_id=sql_string(rule["id"]), sql=rule_sql(rule, args.date)))
                except duckdb.Error as e:
                    raise SystemExit(f"rule {rule['id']}: {e}")

    # SCORE: hits, points, red lines, colours.
    with stages.run("score"):
        con.execute("CREATE OR REPLACE TABLE rules (rule_id VARCHAR, title VARCHAR, dimension VARCHAR, "
                    "points INTEGER, red_line BOOLEAN, flag VARCHAR)")
        con.executemany("INSERT INTO rules VALUES (?, ?, ?, ?, ?, ?)", [
            (r["id"], r["title"], r["dimension"], int(r.get("points", 0)), bool(r.get("red_line", False)), r.get("flag"))
            for r in rules])
        con.execute("CREATE OR REPLACE TABLE bands (colour VARCHAR, min_points INTEGER, max_points INTEGER)")
        con.executemany("INSERT INTO bands VALUES (?, ?, ?)",
                        [(b["colour"], int(b["min"]), int(b["max"])) for b in scoring["bands"]])
        con.execute(template("score.sql"))
        bad = con.execute("SELECT rule_id, source_record_id, uscc, event_date FROM bad_hits LIMIT 1").fetchone()
        if bad:
            raise SystemExit(f"rule {bad[0]}: row for record {bad[1]!r} has uscc {bad[2]!r} and event_date "
                             f"{bad[3]}, expected a valid USCC and a date")

    # WRITE: Parquet outputs.
    with stages.run("write"):
        con.execute(template("write.sql", out=str(out)))
        for feed in feeds:
            con.execute(template("write_landed.sql", feed=feed, out=str(out)))

    counts = {feed: counts[feed] | {"seconds": feed_seconds[feed]} for feed in feeds}
    colours = dict(con.execute("SELECT coalesce(colour, 'none'), count(*) FROM profiles GROUP BY 1 ORDER BY 1").fetchall())
    summary = {
        "engine": f"duckdb {duckdb.__version__}",
        "business_date": args.date.isoformat(),
        "threads": con.execute("SELECT current_setting('threads')").fetchone()[0],
        "memory_limit": con.execute("SELECT current_setting('memory_limit')").fetchone()[0],
        "rules_version": rules_version,
        "stages_seconds": stages.seconds,
        "total_seconds": round(sum(stages.seconds.values()), 3),
        "feeds": counts,
        "hits": con.execute("SELECT count(*) FROM hits").fetchone()[0],
        "profiles": con.execute("SELECT count(*) FROM profiles").fetchone()[0],
        "codes": con.execute("SELECT count(*) FROM codes").fetchone()[0],
        "colours": colours,
    }
    con.close()
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"{'feed':<16}{'read':>10}{'landed':>10}{'quarantined':>12}{'duplicates':>11}")
    for feed, c in counts.items():
        print(f"{feed:<16}{c['read']:>10}{c['landed']:>10}{c['quarantined']:>12}{c['duplicates']:>11}")
    print(json.dumps(summary, ensure_ascii=False))


def check_landed_schema(con, feed, schema):
    """The landed table has the canonical columns of schemas/<feed>.toml, in order."""
    expected = STANDARD_COLUMNS + [(c["name"], duckdb_type(c)) for c in schema["columns"]]
    found = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = ? ORDER BY ordinal_position", [f"{feed}_landed"]).fetchall()
    if [(n, t.upper()) for n, t in found] != [(n, t.upper()) for n, t in expected]:
        raise SystemExit(f"feed {feed}: map_{feed}.sql lands {found}, schemas say {expected}")


def feed_counts(con, feed):
    """read = landed + quarantined + duplicates, as our ledger reconciles a feed.
    CSV rows DuckDB's reader rejected (wrong field count, invalid UTF-8) count
    as quarantined malformed records."""
    staged, rejected = con.execute(
        f"SELECT count(*), count(_rejected) FROM checked_{feed}").fetchone()
    landed = con.execute(f"SELECT count(*) FROM {feed}_landed").fetchone()[0]
    unreadable = 0
    if con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [f"rejects_{feed}"]).fetchone()[0]:
        unreadable = con.execute(f"SELECT count(DISTINCT (file_id, line)) FROM rejects_{feed}").fetchone()[0]
    return {
        "read": staged + unreadable,
        "landed": landed,
        "quarantined": rejected + unreadable,
        "duplicates": staged - rejected - landed,
    }


if __name__ == "__main__":
    sys.exit(main())
