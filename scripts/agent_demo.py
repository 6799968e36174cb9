"""`make agent-demo`: an MCP client speaking the real protocol over stdio to the installed
`customers-mcp`, against every vendor's sandbox on 127.0.0.1. No model is needed: the client
makes the calls an assistant would.

It lists the tools, finds one person across all four vendors by her e-mail address, shows her
activity, previews a fix of her Malomo phone number on a read-only server (the sandbox's log
shows that nothing was written), applies it on a server started with --allow-writes, and
reads it back.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from integration_tests.mcp_client import Session, session
from integration_tests.sandbox import capillary, loke, malomo, okendo, person, start

MODULES: dict[str, Any] = {"okendo": okendo, "loke": loke, "malomo": malomo,
                           "capillary": capillary}


def _show(title: str, value: Any) -> None:
    print(f"\n== {title}")
    print(json.dumps(value, indent=2, ensure_ascii=False)[:2500])


def _summary(found: dict[str, Any]) -> list[str]:
    lines = []
    for result in found["results"]:
        ids = [c.get("customerId") or c.get("id") for c in result["customers"]]
        lines.append(f"{result['vendor']:<10} {result['status']:<10} {ids} "
                     f"{result['message']}".rstrip())
    return lines


def main() -> int:
    apis: dict[str, Any] = {"okendo": okendo.Api(), "loke": loke.Api(customers=300),
                            "malomo": malomo.Api(customers=120),
                            "capillary": capillary.Api(customers=60)}
    servers = {vendor: start(api) for vendor, api in apis.items()}
    try:
        ids = person.add_everywhere(apis)
        configs = [MODULES[v].config(servers[v].url) for v in apis]
        fix = {"vendor": "malomo", "match": {"email": person.EMAIL},
               "changes": {"phone_number": person.FIXED_PHONE}}

        seen: Session = session(configs, [
            ("find_customer", {"email": person.EMAIL}),
            ("customer_activity", {"vendor": "okendo", "id": ids["okendo"], "limit": 5}),
            ("customer_activity", {"vendor": "loke", "id": ids["loke"], "limit": 5}),
            ("customer_activity", {"vendor": "malomo", "id": ids["malomo"], "limit": 5}),
            ("update_customer", {**fix, "apply": True}),
        ])
        print("customers-mcp tools: " + ", ".join(t["name"] for t in seen.tools))
        found, okendo_a, loke_a, malomo_a, preview = (r.data for r in seen.results)
        print(f"\n== find_customer email={person.EMAIL}")
        print("\n".join(_summary(found)))
        for name, activity in (("okendo", okendo_a), ("loke", loke_a), ("malomo", malomo_a)):
            print(f"\n== customer_activity {name}")
            for item in activity["records"]:
                record = item["record"]
                print(f"{item['kind']:<22} " + json.dumps(
                    {k: record[k] for k in list(record)[:4]}, ensure_ascii=False))
        _show("update_customer (server without --allow-writes, apply: true): a preview",
              {k: preview[k] for k in ("outcome", "not_applied_because", "changes")})
        writes = apis["malomo"].writes
        print(f"Malomo's request log: {len(writes)} write(s) so far")
        if writes:
            print("a preview wrote to Malomo", file=sys.stderr)
            return 1

        applied: Session = session(configs, [
            ("update_customer", {**fix, "apply": True}),
            ("get_customer", {"vendor": "malomo", "id": ids["malomo"]}),
        ], "--allow-writes")
        result, read_back = (r.data for r in applied.results)
        _show("update_customer (server with --allow-writes, apply: true)",
              {k: result[k] for k in ("outcome", "applied", "changes")})
        phone = read_back["customer"]["phone_number"]
        print(f"\n== get_customer malomo {ids['malomo']}: phone_number is now {phone}")
        print(f"Malomo's request log: {apis['malomo'].writes}")
        return 0 if phone == person.FIXED_PHONE and result["applied"] else 1
    finally:
        for server in servers.values():
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
