#!/usr/bin/env python3
"""DuckDB alone, writing the service's `events` rows: what a row costs the
engine by transaction size and checkpoint schedule, without the service.

The rows are those the service wrote in `bench_storage` (the ingest
benchmark's events), read from a file it kept:

    cargo run --release --example bench_storage -- --events 300000 --batch 50000 --keep /tmp/events.duckdb
    python3 -m pip install duckdb==2.0.0 pyarrow     # the engine version the service bundles
    scripts/bench-duckdb-alone.py /tmp/events.duckdb [--rows 1000000] [--threads 2]

Each case creates the table with the service's own DDL in a fresh file,
appends the rows from Arrow in transactions of the given size (cycling
through the sample until `--rows`), runs `CHECKPOINT` after every
245,760 rows as the service's writer does, and prints per row: wall time,
the process's CPU time, the commits' and the checkpoints' share, and the
file's size.
"""

import argparse
import os
import tempfile
import time

import duckdb
import pyarrow as pa

CHECKPOINT_EVERY = 2 * 122_880


def rows_of(path):
    source = duckdb.connect(path, read_only=True)
    ddl = source.sql("SELECT sql FROM duckdb_tables() WHERE table_name = 'events'").fetchall()[0][0]
    table = source.sql("SELECT * FROM events").to_arrow_table()
    source.close()
    return ddl, table


def take(table, start, count):
    """`count` rows from `start`, wrapping round the end of the sample."""
    start %= table.num_rows
    if start + count <= table.num_rows:
        return table.slice(start, count)
    return pa.concat_tables([table.slice(start), table.slice(0, count - (table.num_rows - start))])


def run(label, ddl, table, transaction_rows, total, threads, setup=()):
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "alone.duckdb")
        conn = duckdb.connect(path, config={"threads": threads, "checkpoint_threshold": "1GB"})
        for statement in setup:
            conn.execute(statement)
        conn.execute(ddl)
        written = since_checkpoint = 0
        committing = checkpointing = 0.0
        wall, cpu = time.perf_counter(), time.process_time()
        while written < total:
            count = min(transaction_rows, total - written)
            conn.register("part", take(table, written, count))
            conn.execute("BEGIN")
            conn.execute("INSERT INTO events SELECT * FROM part")
            started = time.perf_counter()
            conn.execute("COMMIT")
            committing += time.perf_counter() - started
            written += count
            since_checkpoint += count
            if since_checkpoint >= CHECKPOINT_EVERY:
                started = time.perf_counter()
                conn.execute("CHECKPOINT")
                checkpointing += time.perf_counter() - started
                since_checkpoint = 0
        started = time.perf_counter()
        conn.execute("CHECKPOINT")
        checkpointing += time.perf_counter() - started
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        conn.close()
        size = os.path.getsize(path)
    per_row = lambda seconds: 1e6 * seconds / written  # noqa: E731
    print(
        f"{label:44s} wall {per_row(wall):5.2f} µs/row, cpu {per_row(cpu):5.2f}"
        f" (commits {per_row(committing):4.2f}, checkpoints {per_row(checkpointing):4.2f}),"
        f" {size / written:4.0f} bytes/row",
        flush=True,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", help="a DuckDB file holding the service's events table")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    ddl, table = rows_of(args.file)
    print(f"DuckDB {duckdb.__version__}, {table.num_rows} sample rows, {args.rows} written, {args.threads} threads")
    for rows in (50_000, 122_880, 2 * 122_880):
        run(f"transactions of {rows:,} rows", ddl, table, rows, args.rows, args.threads)
    run(
        "transactions of 50,000 rows, fsync_mode NONE",
        ddl,
        table,
        50_000,
        args.rows,
        args.threads,
        setup=("SET fsync_mode = 'NONE'",),
    )


if __name__ == "__main__":
    main()
