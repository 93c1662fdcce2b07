"""Runs SQL statements on current ClickHouse, embedded in-process by chdb.

Reads a JSON object from standard input:
  {"database": NAME, "setup": [SQL, ...], "queries": [SQL, ...]}
runs the setup statements, then each query with NAME as the current database,
and prints {"version": ..., "results": [{"tsv": TEXT} | {"error": TEXT}, ...]}.
A failing setup statement ends the run with status 1.
"""

import json
import sys
import tempfile

from chdb import session


def main() -> int:
    job = json.load(sys.stdin)
    with tempfile.TemporaryDirectory() as path:
        db = session.Session(path)
        for statement in job["setup"]:
            try:
                db.query(statement)
            except Exception as error:  # chdb raises its own error types
                print(f"setup statement failed: {error}\n{statement[:500]}", file=sys.stderr)
                return 1
        db.query(f"USE {job['database']}")
        version = db.query("SELECT version()", "TabSeparated").bytes().decode().strip()
        results = []
        for statement in job["queries"]:
            try:
                text = db.query(statement, "TabSeparated").bytes().decode()
                results.append({"tsv": text})
            except Exception as error:
                results.append({"error": str(error)})
        json.dump({"version": version, "results": results}, sys.stdout)
        db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
