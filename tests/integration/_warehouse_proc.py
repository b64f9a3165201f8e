"""Processes that tests/integration/test_warehouse.py runs beside itself.

    python _warehouse_proc.py load WAREHOUSE PLAN.json
        one Writer session loading the plan's record lists; prints "committed N" after each
        committed batch and "done" at the end (a test kills it in between)
    python _warehouse_proc.py read WAREHOUSE OUT.jsonl STOP_FILE
        one read-only connection querying transactions in a loop until STOP_FILE exists;
        prints "ready" after the first query; one JSON line per observation in OUT.jsonl
    python _warehouse_proc.py hold WAREHOUSE
        holds the writer lock (prints "held PID") until a line arrives on its stdin

A file path is run, not a module, so the test's package layout does not matter; the main
guard matters: ``load_records`` may start worker processes with the spawn method.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def load(warehouse: str, plan_path: str) -> None:
    from bankconnect_etl.pipeline import load_records
    from bankconnect_etl.warehouse import Writer

    plan = json.loads(Path(plan_path).read_text())
    committed = 0

    def progress(_entities: int) -> None:  # called once per committed batch
        nonlocal committed
        committed += 1
        print(f"committed {committed}", flush=True)

    with Writer(warehouse, wait_s=plan.get("wait_s", 30.0), run_id="loader") as w:
        print(f"writer {os.getpid()}", flush=True)
        for step in plan["loads"]:
            load_records(
                w,
                step["records"],
                run_id=step["run_id"],
                batch_size=step["batch_size"],
                progress=progress,
            )
    print("done", flush=True)


def read(warehouse: str, out_path: str, stop_path: str) -> None:
    from bankconnect_etl.warehouse import connect

    stop = Path(stop_path)
    con = connect(warehouse, read_only=True)
    with open(out_path, "w") as out:
        first = True
        while first or not stop.exists():
            t0 = time.monotonic()
            per_entity = con.sql(
                "SELECT entity_id, count(*) FROM transactions GROUP BY entity_id"
            ).fetchall()
            t1 = time.monotonic()
            distinct, total = con.sql(
                "SELECT count(DISTINCT entity_id), count(*) FROM transactions"
            ).fetchall()[0]
            t2 = time.monotonic()
            out.write(
                json.dumps(
                    {
                        "per_entity": dict(per_entity),
                        "distinct": distinct,
                        "total": total,
                        "seconds": [t1 - t0, t2 - t1],
                    }
                )
                + "\n"
            )
            out.flush()
            if first:
                print("ready", flush=True)
                first = False
    con.close()


def hold(warehouse: str) -> None:
    from bankconnect_etl.warehouse import Writer

    with Writer(warehouse, wait_s=30.0, run_id="holder-run"):
        print(f"held {os.getpid()}", flush=True)
        sys.stdin.readline()  # until the test says so (or closes our stdin)


if __name__ == "__main__":
    {"load": load, "read": read, "hold": hold}[sys.argv[1]](*sys.argv[2:])
