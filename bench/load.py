"""Benchmark of transform + validate + load, from raw files into a fresh warehouse.

The input is the raw zone a sync writes (gzipped JSON lines, one entity record per line,
one part per batch of 100 entities), built from the sandbox's own responses in-process:
1,000 distinct entities, repeated under new entity ids for larger runs (the work per
entity is the same; ids keep the entities distinct).

Measured, each load in a fresh subprocess (so its peak RSS is its own):
- ours: ``pipeline.load_records`` over the parts (transform, pandera validation, one DuckLake
  transaction per batch), in transactions/s; target 100,000/s or more;
- floor: DuckDB's own ``read_json`` of the same files into a plain DuckDB table;
- memory: peak RSS (this process and its transform worker) at 1,000 and at 20,000
  entities; target flat (bounded by the batch);
- upsert: re-loading 1% of 10,000 loaded entities against the full load; target under 5%.

    .venv/bin/python bench/load.py                      # about 5 minutes
    .venv/bin/python bench/load.py --sizes 1000 5000    # quicker
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson
import psutil
from _common import table

BATCH = 100
WORKERS = int(os.environ.get("BENCH_TRANSFORM_WORKERS", "1"))


def make_records(n: int, seed: int = 5) -> list[dict]:
    """``n`` entity records exactly as a sync would archive them (no HTTP)."""
    from bankconnect_etl.sandbox.records import offline_records

    return offline_records(n, seed)


def write_parts(records: list[dict], n: int, folder: Path) -> int:
    """Parts for ``n`` entities, cycling through ``records`` under new ids; transactions."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [orjson.dumps(r) for r in records]
    txns = [len(r["responses"]["transactions"]["transactions"]) for r in records]
    total = 0
    for start in range(0, n, BATCH):
        with gzip.open(folder / f"part-{start // BATCH + 1:05d}.jsonl.gz", "wb", 5) as f:
            for i in range(start, min(n, start + BATCH)):
                k, lap = i % len(records), i // len(records)
                line = lines[k]
                if lap:
                    old = records[k]["entity_id"].encode()
                    line = line.replace(old, old[:-4] + f"{lap:04x}".encode())
                f.write(line + b"\n")
                total += txns[k]
    return total


def child_load(parts_dir: str, warehouse: str, limit: int, upsert_part: int) -> None:
    """In a subprocess: load the first ``limit`` parts, optionally re-load one; print JSON."""
    from bankconnect_etl import raw
    from bankconnect_etl.pipeline import REBUILD_PARTS_PER_BATCH, load_records
    from bankconnect_etl.warehouse import Writer

    parts = raw.parts(Path(parts_dir))[:limit]
    # grouped as a rebuild groups a run's parts: one transaction per group
    groups = list(raw.groups(parts, REBUILD_PARTS_PER_BATCH))
    result: dict = {}
    # Sampled, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child would report
    # the peak of the benchmark process that forked it.
    me, peak, done = psutil.Process(), [0], threading.Event()

    def sample() -> None:
        while not done.wait(0.02):  # this process and its transform worker together
            with contextlib.suppress(psutil.Error):
                procs = [me, *me.children(recursive=True)]
                peak[0] = max(peak[0], sum(p.memory_info().rss for p in procs))

    threading.Thread(target=sample, daemon=True).start()
    with Writer(warehouse, run_id="bench") as w:
        t0 = time.perf_counter()
        load_records(w, groups, run_id="bench", workers=WORKERS)
        result["seconds"] = time.perf_counter() - t0
        if upsert_part:
            t0 = time.perf_counter()
            load_records(w, [str(parts[upsert_part])], run_id="bench2", workers=WORKERS)
            result["upsert_seconds"] = time.perf_counter() - t0
        result["rows"] = w.con.sql("SELECT count(*) FROM transactions").fetchone()[0]
    done.set()
    result["peak_rss_mb"] = peak[0] / 1e6
    print(json.dumps(result))


def run_child(parts_dir: Path, warehouse: Path, limit: int, upsert_part: int = 0) -> dict:
    shutil.rmtree(warehouse, ignore_errors=True)
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            str(parts_dir),
            str(warehouse),
            str(limit),
            str(upsert_part),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def floor(parts_dir: Path, limit: int, db: Path) -> float:
    import duckdb

    files = [str(p) for p in sorted(parts_dir.glob("part-*.jsonl.gz"))[:limit]]
    db.unlink(missing_ok=True)
    con = duckdb.connect(str(db))
    t0 = time.perf_counter()
    con.execute(
        "CREATE TABLE raw AS SELECT * FROM read_json(?, format='newline_delimited', "
        "maximum_object_size=67108864)",
        [files],
    )
    seconds = time.perf_counter() - t0
    con.close()
    return seconds


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_load(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", type=int, nargs=2, default=[1000, 20000], metavar=("SMALL", "LARGE")
    )
    parser.add_argument("--upsert-base", type=int, default=10000)
    args = parser.parse_args()
    small, large = args.sizes
    print(f"machine   nproc {os.cpu_count()}, python {platform.python_version()}")
    print(f"command   {' '.join([os.path.relpath(sys.executable), *sys.argv])}")
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        records = make_records(min(small, 1000))
        parts = root / "parts"
        total = write_parts(records, max(large, args.upsert_base), parts)
        raw_mb = sum(p.stat().st_size for p in parts.iterdir()) / 1e6
        print(
            f"input     {max(large, args.upsert_base):,} entities, {total:,} transactions, "
            f"{raw_mb:,.0f} MB gzipped (built in {time.perf_counter() - t0:.0f} s)"
        )
        n_small = -(-small // BATCH)
        ours_small = run_child(parts, root / "wh", n_small)
        floor_s = floor(parts, n_small, root / "floor.duckdb")
        base = run_child(parts, root / "wh", -(-args.upsert_base // BATCH), upsert_part=1)
        big = run_child(parts, root / "wh", -(-large // BATCH))
    rate = lambda r: r["rows"] / r["seconds"]  # noqa: E731
    rows = [
        [
            f"ours, {small:,} entities",
            f"{ours_small['rows']:,}",
            f"{ours_small['seconds']:.1f}",
            f"{rate(ours_small):,.0f}",
            f"{ours_small['peak_rss_mb']:.0f}",
        ],
        [f"floor: read_json, {small:,} entities", "", f"{floor_s:.1f}", "", ""],
        [
            f"ours, {args.upsert_base:,} entities",
            f"{base['rows']:,}",
            f"{base['seconds']:.1f}",
            f"{rate(base):,.0f}",
            f"{base['peak_rss_mb']:.0f}",
        ],
        [
            f"ours, {large:,} entities",
            f"{big['rows']:,}",
            f"{big['seconds']:.1f}",
            f"{rate(big):,.0f}",
            f"{big['peak_rss_mb']:.0f}",
        ],
        [
            f"upsert 1% ({BATCH} of {args.upsert_base:,})",
            "",
            f"{base['upsert_seconds']:.2f}",
            "",
            "",
        ],
    ]
    print()
    print(table(["run", "transactions", "s", "txn/s", "peak RSS MB"], rows))
    ratios = [
        ["ours txn/s", f"{rate(ours_small):,.0f}", ">= 100,000"],
        [
            "ours / read_json floor, wall time",
            f"{ours_small['seconds'] / floor_s:.2f}",
            "(reported)",
        ],
        [
            f"peak RSS {large:,} / {small:,} entities",
            f"{big['peak_rss_mb'] / ours_small['peak_rss_mb']:.2f}",
            "flat (about 1)",
        ],
        ["upsert 1% / full load", f"{base['upsert_seconds'] / base['seconds']:.3f}", "< 0.05"],
    ]
    print()
    print(table(["ratio", "value", "target"], ratios))
    return 0


if __name__ == "__main__":
    sys.exit(main())
