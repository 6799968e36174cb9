"""One person known to all four sandboxes, for the MCP server's tests and `make agent-demo`:
the same e-mail address everywhere (in another letter case at Malomo, as people type it),
her phone number at LOKE and Capillary, related records at each vendor.

Each `add_*` puts her into a vendor's Api as that vendor's documents shape a customer, and
returns her id there.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from integration_tests.sandbox import capillary, loke, malomo, okendo, seed

EMAIL = "jane.citizen@example.com"
PHONE = "+61412345678"  # LOKE stores it so; Capillary's mobile identifier is its digits
MOBILE = "61412345678"
EXTERNAL_ID = "00JANE-4711"
MALOMO_PHONE = "555-010-4477"  # the number Malomo holds: the one the demo fixes
FIXED_PHONE = "555-010-9999"
_WHEN = datetime(2026, 11, 20, 9, 30, tzinfo=timezone.utc)


def add_okendo(api: okendo.Api, activities: int = 3) -> str:
    cid = "0b5c4d1e-7a3f-4c2b-9e8d-6f1a2b3c4d5e"
    with api.lock:
        api.customers[cid] = {"email": EMAIL, "givenName": "Jane", "familyName": "Citizen",
                              "dateFirstActive": seed.iso(_WHEN, millis=True)}
        api._by_email[EMAIL.casefold()] = cid
        api.profiles[cid] = []
        api.activities[cid] = [
            {"activityId": f"a{n}-jane", "namespace": "reviews",
             "date": seed.iso(_WHEN - timedelta(days=n), millis=True),
             "title": f"Left a review ({n})"} for n in range(activities)]
        api.loyalty_customers[EMAIL.casefold()] = {
            "loyaltyCustomerId": "7d1e0c4a-jane", "status": "enrolled",
            "points": {"balance": 1250}, "vipTierName": "Silver"}
    return cid


def add_loke(api: loke.Api) -> str:
    cid = "01JANECITIZEN0000000000001"
    record = {"id": cid, "createdAt": seed.iso(_WHEN), "updatedAt": seed.iso(_WHEN),
              "email": EMAIL, "firstName": "Jane", "lastName": "Citizen",
              "phoneNumber": PHONE}
    with api.lock:
        api.customers.append(record)
        api._by_id[cid] = record
        api.memberships[cid] = [{"id": f"01JANELIST{n:016d}", "name": name}
                                for n, name in enumerate(("VIP ✨", "Café regulars"))]
        api._sorted.clear()
    return cid


def add_malomo(api: malomo.Api, events: int = 2) -> str:
    cid = "9f8e7d6c-5b4a-4321-8fed-cba987654321"
    record = {"created_at": seed.iso(_WHEN), "email": EMAIL.upper().replace("@EXAMPLE.COM",
                                                                            "@example.com"),
              "first_name": "Jane", "id": cid, "last_name": "Citizen",
              "phone_number": MALOMO_PHONE, "updated_at": seed.iso(_WHEN)}
    with api.lock:
        api._position[cid] = len(api.customers)
        api.customers.append(record)
        api.events[cid] = [
            {"created_at": seed.iso(_WHEN + timedelta(days=n)), "id": f"e{n}-jane",
             "label": f"Order #{9000 + n} on its way", "type": "ShipmentInTransit",
             "properties": {}, "timestamp": int((_WHEN + timedelta(days=n)).timestamp()),
             "updated_at": seed.iso(_WHEN + timedelta(days=n))} for n in range(events)]
    return cid


def add_capillary(api: capillary.Api) -> int:
    cid = 565999999
    identifiers = [{"type": "mobile", "value": MOBILE}, {"type": "email", "value": EMAIL},
                   {"type": "externalId", "value": EXTERNAL_ID}]
    customer: dict[str, Any] = {
        "id": cid,
        "profiles": [{"firstName": "Jane", "lastName": "Citizen", "source": "INSTORE",
                      "accountId": "", "userId": 599999, "identifiers": identifiers,
                      "autoUpdateTime": _WHEN.strftime("%Y-%m-%dT%H:%M:%S+05:30"),
                      "commChannels": [], "fields": {"city": "Melbourne"}}],
        "loyaltyInfo": {"loyaltyType": "loyalty", "lifetimePurchases": 1234.5},
        "extendedFields": {"gender": "Female"},
        "warnings": [],
    }
    with api.lock:
        api.customers.append(customer)
        api._holders = None
        # A sandbox that keeps enrolments per customer (`embed=mlp`): Gold in the default
        # program, as every loyalty customer's lookup shows where it does not.
        enrolments = getattr(api, "_enrolments", None)
        if isinstance(enrolments, dict):
            enrolments[cid] = [api._enrolment(1483, 2, 1250, None, None)]
    return cid


def add_everywhere(apis: dict[str, Any]) -> dict[str, str]:
    """Her id at each vendor of `apis` (vendor -> Api)."""
    adders = {"okendo": add_okendo, "loke": add_loke, "malomo": add_malomo,
              "capillary": add_capillary}
    return {vendor: str(adders[vendor](api)) for vendor, api in apis.items()}
