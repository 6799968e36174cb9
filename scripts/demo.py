"""`make demo`: sync every vendor's sandbox through PyAirbyte into one local DuckDB file, then
close the loop: segments computed in SQL are written back into Capillary and Malomo.

This is how a PyAirbyte user runs the connector: `airbyte.get_source` on the installed
`source-customers` executable, `read` into a `DuckDBCache`. Every vendor has a `customers`
stream, so each vendor gets its own DuckDB schema (`loke.customers`, `malomo.customers`, ...),
one table per stream.

Then data activation, as Airbyte's platform runs it: each segment is a table of schema
`segments`, made by one SQL statement (SEGMENTS); its rows go to the installed
`destination-customers write` with an activation catalog (object `customers`, operation
`update`, matching key), and the source reads the vendor again into the same schema, so a
before/after query shows what the vendor holds now. PyAirbyte comes with the package's `demo`
extra (`make demo` installs it); nothing here talks to anything but the sandboxes on
127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass
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

# Capillary's customers with the programs they are enrolled in (the big spenders' segment
# enrols them in one).
EXTRA_CONFIG = {"capillary": {"embed": ["mlp"]}}

SAMPLE_QUERY = """\
SELECT m.name AS membership,
       count(*) AS customers,
       count(*) FILTER (WHERE c.hasagreedtomarketing) AS agreed_to_marketing
FROM loke.customer_memberships AS m
JOIN loke.customers AS c ON c.id = m.customerid
GROUP BY m.name
ORDER BY customers DESC, membership"""




@dataclass(frozen=True)
class Segment:
    """A segment to write back: the SQL that makes `segments.<name>`, the columns of it that
    are the records sent, and the query that shows before and after once read back."""

    vendor: str
    name: str
    title: str
    sql: str
    key: str  # the matching key: a column of the records and of the vendor's customers
    columns: tuple[str, ...]  # the records' fields, the key first
    check: str  # how many rows of the segment the vendor holds as written, once read back
    show: str


SEGMENTS = (
    Segment(
        vendor="malomo", name="malomo_sms", key="id", columns=("id", "phone_number"),
        title="Malomo: engaged customers (5+ tracking events) get an E.164 phone number, "
              "for SMS updates",
        sql="""\
CREATE OR REPLACE TABLE segments.malomo_sms AS
SELECT c.id, c.email, c.phone_number AS phone_before,
       '+1' || regexp_replace(c.phone_number, '[^0-9]', '', 'g') AS phone_number
FROM malomo.customers AS c
JOIN malomo.customer_events AS e ON e.customer_id = c.id
WHERE c.phone_number NOT LIKE '+%'
GROUP BY c.id, c.email, c.phone_number
HAVING count(*) >= 5""",
        check="SELECT count(*) FROM segments.malomo_sms AS s "
              "JOIN malomo.customers AS c ON c.id = s.id AND c.phone_number = s.phone_number",
        show="""\
SELECT s.email, s.phone_before AS "phone before", c.phone_number AS "phone after"
FROM segments.malomo_sms AS s JOIN malomo.customers AS c ON c.id = s.id
ORDER BY s.email LIMIT 5"""),
    Segment(
        vendor="capillary", name="capillary_enrol", key="mobile",
        columns=("mobile", "loyaltyProgramEnrollments"),
        title="Capillary: big spenders (50,000+ lifetime purchases) are enrolled in the Beauty "
              "Club, at a tier by spend, with a point per 100 spent, the tier for a year",
        sql="""\
CREATE OR REPLACE TABLE segments.capillary_enrol AS
SELECT identifiervalue AS mobile, profiles->>'$[0].firstName' AS first_name,
       (loyaltyinfo->>'lifetimePurchases')::DECIMAL(12, 2) AS lifetime_purchases,
       loyaltyinfo->>'loyaltyType' AS loyalty_before,
       [{'programId': 2207,
         'tierNumber': CASE WHEN (loyaltyinfo->>'lifetimePurchases')::DOUBLE >= 75000
                            THEN 2 ELSE 1 END,
         'loyaltyPoints': floor((loyaltyinfo->>'lifetimePurchases')::DOUBLE / 100)::INTEGER,
         'tierExpiryDate': strftime(current_date + INTERVAL 1 YEAR, '%Y-%m-%dT23:59:59Z')}]
         AS loyaltyProgramEnrollments
FROM capillary.customers
WHERE identifiername = 'mobile' AND (loyaltyinfo->>'lifetimePurchases')::DOUBLE >= 50000""",
        check="SELECT count(*) FROM segments.capillary_enrol AS s JOIN capillary.customers "
              "AS c ON c.identifiervalue = s.mobile AND EXISTS (SELECT 1 FROM "
              "unnest(from_json(c.loyaltyprogramdetails, '[\"JSON\"]')) AS p(program) "
              "WHERE program->>'programId' = '2207' AND (program->>'slabSNo')::INTEGER = "
              "s.loyaltyProgramEnrollments[1].tierNumber)",
        show="""\
SELECT s.mobile, s.first_name, s.lifetime_purchases, s.loyalty_before AS "before",
       c.loyaltyinfo->>'loyaltyType' AS "after",
       (SELECT (p->>'currentSlab') || ', ' || (p->>'loyaltyPoints')::DOUBLE::INTEGER
               || ' points, until ' || left(p->>'tierExpiryDate', 10)
        FROM unnest(from_json(c.loyaltyprogramdetails, '["JSON"]')) AS t(p)
        WHERE p->>'programId' = '2207') AS "Beauty Club"
FROM segments.capillary_enrol AS s JOIN capillary.customers AS c
  ON c.identifiervalue = s.mobile
ORDER BY s.lifetime_purchases DESC LIMIT 8"""),
)


def executable(name: str = "source-customers") -> Path:
    """A command installed beside this Python, so PyAirbyte installs nothing."""
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        raise SystemExit(f"{name} is not installed beside {sys.executable}; run `make demo`")
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


def sync(airbyte: ModuleType, vendor: str, url: str, streams: str | list[str] = "*") -> bool:
    """Reads the streams of `vendor` (all by default) into the DuckDB schema named after it;
    a stream read before is read incrementally where it can be, and merged by its key."""
    print(f"\n=== {vendor}: sandbox at {url} -> schema `{vendor}` of {relative(DATABASE)}",
          flush=True)
    try:
        config = VENDORS[vendor].config(url, **EXTRA_CONFIG.get(vendor, {}))
        source = airbyte.get_source("source-customers", config=config,
                                    local_executable=executable(), streams=streams)
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


def write_back(segment: Segment, url: str) -> bool:
    """Makes the segment's table, sends its rows to `destination-customers write` and prints
    the destination's own summary; False when it fails."""
    import duckdb

    print(f"\n=== Closing the loop. {segment.title}\n\n{segment.sql}", flush=True)
    with duckdb.connect(str(DATABASE)) as db:
        db.execute("CREATE SCHEMA IF NOT EXISTS segments")
        db.execute(segment.sql)
        fields = ", ".join(f'"{column}"' for column in segment.columns)
        rows = db.sql(f"SELECT {fields} FROM segments.{segment.name} ORDER BY 1").fetchall()
    records = [{"type": "RECORD", "record": {
        "stream": segment.name, "emitted_at": 0,
        "data": {k: v for k, v in zip(segment.columns, row, strict=True) if v is not None}}}
        for row in rows]
    # An activation catalog, as Airbyte's platform sends one: the stream is the segment, the
    # object and the operation are the vendor's, the primary key is the matching key.
    catalog = {"streams": [{
        "stream": {"name": segment.name, "json_schema": {}, "supported_sync_modes": [
            "full_refresh"]},
        "sync_mode": "full_refresh", "destination_sync_mode": "update",
        "destination_object_name": "customers", "primary_key": [[segment.key]]}]}
    state = {"type": "STATE", "state": {"type": "STREAM", "stream": {
        "stream_descriptor": {"name": segment.name}, "stream_state": {"rows": len(rows)}}}}
    print(f"\n{len(rows)} rows -> destination-customers write ({segment.vendor}, object "
          f"customers, update by {segment.key}):", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        paths = {name: Path(folder) / f"{name}.json" for name in ("config", "catalog")}
        paths["config"].write_text(json.dumps(VENDORS[segment.vendor].config(url)))
        paths["catalog"].write_text(json.dumps(catalog))
        done = subprocess.run(
            [str(executable("destination-customers")), "write", "--config",
             str(paths["config"]), "--catalog", str(paths["catalog"])],
            input="".join(json.dumps(m) + "\n" for m in [*records, state]),
            capture_output=True, text=True, timeout=600)
    messages = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    for message in messages:
        if message["type"] == "LOG" and message["log"]["level"] in ("INFO", "WARN", "ERROR"):
            print(f"   {message['log']['message']}")
        elif message["type"] == "TRACE" and message["trace"].get("type") == "ERROR":
            print(f"!!! {message['trace']['error']['message']}")
    if done.returncode != 0:
        print(f"!!! destination-customers failed (exit {done.returncode}) {done.stderr[-2000:]}")
    return done.returncode == 0


def show(segment: Segment) -> bool:
    """The segment before it was written and the vendor's customers as read back now."""
    import duckdb

    with duckdb.connect(str(DATABASE), read_only=True) as db:
        (total,) = db.sql(f"SELECT count(*) FROM segments.{segment.name}").fetchone() or (0,)
        (written,) = db.sql(segment.check).fetchone() or (0,)
        print(f"\n=== Read back through source-customers: {written} of {total} customers of "
              f"segments.{segment.name} now hold what was written\n")
        print(db.sql(segment.show))
    return bool(total) and written == total


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
        summary()
        for segment in SEGMENTS if all(results) else ():
            url = servers[segment.vendor].url
            results.append(write_back(segment, url)
                           and sync(airbyte, segment.vendor, url, streams=["customers"])
                           and show(segment))
    finally:
        for server in servers.values():
            server.stop()
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
