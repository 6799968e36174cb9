"""`make demo`: sync every vendor's sandbox through PyAirbyte into one local DuckDB file.

This is how a PyAirbyte user runs the connector: `airbyte.get_source` on the installed
`source-customers` executable, `read` into a `DuckDBCache`. Every vendor has a `customers`
stream, so each vendor gets its own DuckDB schema (`loke.customers`, `malomo.customers`, ...),
one table per stream. PyAirbyte comes with the package's `demo` extra (`make demo` installs
it); nothing here talks to anything but the sandbox on 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from pathlib import Path
from types import ModuleType

from integration_tests.sandbox import VENDORS, start

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "demo"
DATABASE = FOLDER / "customers.duckdb"

# PyAirbyte reads these when it is imported. Offline mode skips the connector registry
# look-up (the connector is local) and, like DO_NOT_TRACK, turns telemetry off.
ENVIRONMENT = {
    "DO_NOT_TRACK": "1",
    "AIRBYTE_OFFLINE_MODE": "1",
    "AIRBYTE_LOGGING_ROOT": str(FOLDER / "logs"),
}

SAMPLE_QUERY = """\
SELECT m.name AS membership,
       count(*) AS customers,
       count(*) FILTER (WHERE c.hasagreedtomarketing) AS agreed_to_marketing
FROM loke.customer_memberships AS m
JOIN loke.customers AS c ON c.id = m.customerid
GROUP BY m.name
ORDER BY customers DESC, membership"""


def executable() -> Path:
    """The `source-customers` installed beside this Python, so PyAirbyte installs nothing."""
    found = shutil.which("source-customers", path=str(Path(sys.executable).parent))
    if found is None:
        raise SystemExit(f"source-customers is not installed beside {sys.executable}; "
                         "run `make demo`")
    return Path(found)


def import_pyairbyte() -> ModuleType:
    os.environ.update(ENVIRONMENT)
    try:
        with warnings.catch_warnings():
            # Google's client libraries (BigQuery, a cache PyAirbyte offers) warn about
            # Python versions on import; nothing here uses them.
            warnings.simplefilter("ignore", FutureWarning)
            import airbyte
    except ImportError:
        raise SystemExit("PyAirbyte is missing: `make demo` installs it "
                         "(pip install '.[demo]')") from None
    module: ModuleType = airbyte
    return module


def sync(airbyte: ModuleType, vendor: str, url: str) -> bool:
    """Reads every stream of `vendor` into the DuckDB schema named after it."""
    print(f"\n=== {vendor}: sandbox at {url} -> schema `{vendor}` of {relative(DATABASE)}",
          flush=True)
    try:
        source = airbyte.get_source("source-customers", config=VENDORS[vendor].config(url),
                                    local_executable=executable(), streams="*")
        source.check()
        with airbyte.caches.DuckDBCache(db_path=DATABASE, schema_name=vendor,
                                        cache_dir=FOLDER / ".cache") as cache:
            source.read(cache=cache)
    except airbyte.exceptions.PyAirbyteError as error:
        print(f"!!! {vendor} failed: {error}", flush=True)
        return False
    return True


def summary() -> None:
    """Rows per table and a sample query, read back from the file as any DuckDB client would."""
    import duckdb

    with duckdb.connect(str(DATABASE), read_only=True) as db:
        tables = db.sql(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_name NOT LIKE '\\_airbyte%' ESCAPE '\\' ORDER BY 1, 2").fetchall()
        print(f"\n=== {relative(DATABASE)}: rows per table (one schema per vendor)")
        for schema, table in tables:
            (count,) = db.sql(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone() or (0,)
            print(f"   {schema + '.' + table:<32} {count:>8,}")
        print("\n=== Sample query: LOKE memberships and their customers\n")
        print(SAMPLE_QUERY)
        print(db.sql(SAMPLE_QUERY))
    # The relation needs its connection alive when printed: keep it in a variable.
    print(f"Query it yourself: {relative(Path(sys.executable))} -c \"import duckdb; "
          f"db = duckdb.connect('{relative(DATABASE)}', read_only=True); "
          f"print(db.sql('FROM malomo.customers LIMIT 5'))\"")


def relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main() -> int:
    airbyte = import_pyairbyte()
    FOLDER.mkdir(exist_ok=True)
    # The sandbox is seeded the same way every run: start from an empty file so the
    # counts below are this run's, not an accumulation of earlier ones.
    DATABASE.unlink(missing_ok=True)
    servers = {name: start(module.Api()) for name, module in VENDORS.items()}
    try:
        results = [sync(airbyte, name, server.url) for name, server in servers.items()]
    finally:
        for server in servers.values():
            server.stop()
    summary()
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
