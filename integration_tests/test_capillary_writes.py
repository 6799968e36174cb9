"""destination-customers into Capillary over real HTTP, the page in full: a check against a
cluster that validates identifiers, enrolments in loyalty programs (read back through the
source), identifiers to add that would merge two customers, warnings, and creates that a
gateway answered with a failure after they were applied. End state by key, exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from integration_tests.cli import catalog_for, run
from integration_tests.sandbox import capillary, malomo
from integration_tests.sandbox.server import Server
from integration_tests.test_destination import (
    EXECUTABLE as DESTINATION,
)
from integration_tests.test_destination import (
    activation,
    capillary_api,
    echoed,
    malomo_api,
    rec,
    rejected_lines,
    state,
    write,
)

__all__ = ["capillary_api", "malomo_api"]  # the fixtures, shared with test_destination


def _mobile(customer: dict[str, Any]) -> str:
    return str(capillary.Api.identifier(customer, "mobile"))


def _logs(out: list[dict[str, Any]]) -> list[str]:
    return [m["log"]["message"] for m in out if m["type"] == "LOG"]


def test_check_passes_against_a_cluster_that_judges_its_lookup_invalid(
        capillary_api: tuple[Any, Server]) -> None:
    api, server = capillary_api
    output = run("check", capillary.config(server.url), executable=[DESTINATION])
    assert output.connection_status == {"status": "SUCCEEDED"}, output.stdout
    # The sandbox validates mobiles: the check's lookup of mobile "0" was refused with 8013.
    (lookup,) = api.requests
    assert lookup.query["identifierValue"] == "0"


def test_enrolments_are_applied_once_and_read_back_through_the_source(
        capillary_api: tuple[Any, Server], tmp_path: Path) -> None:
    api, server = capillary_api
    enrolled = [c for c in api.customers if c["loyaltyInfo"]["loyaltyType"] == "loyalty"][:2]
    newcomers = [c for c in api.customers if c["loyaltyInfo"]["loyaltyType"] != "loyalty"][:2]
    club = {"programId": 2207, "tierNumber": 2, "loyaltyPoints": 750,
            "tierExpiryDate": "2027-12-31T18:30:00Z",
            "pointsExpiryDate": "2027-06-30T23:59:59+05:30"}
    rows = [
        # Already in the default program: left as it is, and said; the new program is added.
        {"mobile": _mobile(enrolled[0]), "loyaltyProgramEnrollments": [
            {"programId": capillary.DEFAULT_PROGRAM, "tierNumber": 3}, club]},
        {"mobile": _mobile(enrolled[1]), "loyaltyProgramEnrollments": [
            {"programId": capillary.DEFAULT_PROGRAM, "tierNumber": 3, "loyaltyPoints": 9999}]},
        {"mobile": _mobile(newcomers[0]), "loyaltyProgramEnrollments": [club]},
        # No time zone: which instant? Rejected, naming the field.
        {"mobile": _mobile(newcomers[1]), "loyaltyProgramEnrollments": [
            {**club, "tierExpiryDate": "2027-12-31T18:30:00"}]},
    ]
    before = {c["id"]: [dict(p) for p in api.programs(c)] for c in (*enrolled, *newcomers)}
    config = {**capillary.config(server.url),
              "object_storage_config": {"storage_type": "Local", "path": str(tmp_path)}}
    code, out, stderr = write(config, activation("update", ["mobile"]),
                              [*(rec(r) for r in rows), state(1)])
    assert code == 0, stderr
    assert echoed(out) == [(1, 4.0, 1.0)]
    programs = {c["id"]: {p["programId"]: p for p in api.programs(c)}
                for c in (*enrolled, *newcomers)}
    # Never re-tiered nor re-credited: Capillary would not, and the destination did not claim it.
    assert programs[enrolled[0]["id"]][capillary.DEFAULT_PROGRAM] == before[enrolled[0]["id"]][0]
    assert programs[enrolled[1]["id"]] == {p["programId"]: p for p in before[enrolled[1]["id"]]}
    for ident in (enrolled[0]["id"], newcomers[0]["id"]):
        joined = programs[ident][2207]
        assert (joined["slabSNo"], joined["loyaltyPoints"]) == (2, 750.0)
        assert joined["tierExpiryDate"] == "2027-12-31T18:30:00+00:00"
        assert joined["pointsExpiryDate"] == "2027-06-30T23:59:59+05:30"
    assert programs[newcomers[1]["id"]] == {}
    assert sorted(api.updates) == sorted([enrolled[0]["id"], newcomers[0]["id"]])
    (bad,) = rejected_lines(tmp_path)
    assert bad["rejected_field"] == "loyaltyProgramEnrollments[0].tierExpiryDate"
    (summary,) = [line for line in _logs(out) if line.startswith("Stream 'segment' done")]
    assert "2 updated, 1 unchanged, 1 rejected (1 \u00d7 invalid date-time)" in summary
    assert "not applied: 2 \u00d7 already enrolled in program 1483, not updated" in summary

    # The source reads the enrolments back (embed mlp).
    source = {**capillary.config(server.url, embed=["mlp"]),
              "identifiers": [_mobile(c) for c in (*enrolled, *newcomers)]}
    read = run("read", source, catalog_for(run("discover", source), "customers"))
    assert read.returncode == 0, read.stderr
    read_back = {r["id"]: sorted(p["programId"] for p in r["loyaltyProgramDetails"])
                 for r in read.records("customers")}
    assert read_back == {ident: sorted(held) for ident, held in programs.items()}


def test_an_identifier_held_by_another_customer_is_never_added(
        capillary_api: tuple[Any, Server], tmp_path: Path) -> None:
    api, server = capillary_api
    target, other = api.customers[0], next(c for c in api.customers if len(c["profiles"]) > 1
                                           and c is not api.customers[0])
    held_elsewhere = capillary.Api.identifier(other, "martjackId")  # on the MARTJACK source
    own_email = capillary.Api.identifier(target, "email") or "kept.as.is@example.com"
    rows = [
        {"mobile": _mobile(target), "identifiers": [
            {"type": "martjackId", "value": held_elsewhere}]},
        {"mobile": _mobile(target), "identifiers": [
            {"type": "externalId", "value": "00991177"}, {"type": "email", "value": own_email}]},
    ]
    config = {**capillary.config(server.url),
              "object_storage_config": {"storage_type": "Local", "path": str(tmp_path)}}
    code, out, stderr = write(config, activation("update", ["mobile"]),
                              [*(rec(r) for r in rows), state(1)])
    assert code == 0, stderr
    assert api.merges == []  # Capillary would have merged the two customers
    assert capillary.Api.identifier(api.find("mobile", _mobile(target)), "externalId") in (
        "00991177", capillary.Api.identifier(target, "externalId"))
    assert any(i == {"type": "externalId", "value": "00991177"}
               for p in api.find("mobile", _mobile(target))["profiles"]
               for i in p["identifiers"])
    (refused,) = rejected_lines(tmp_path)
    assert refused["rejected_reason"] == "identifier held by another customer"
    assert refused["rejected_field"] == "identifiers[0]"
    assert f"belongs to customer {other['id']}" in refused["rejected_message"]
    assert str(held_elsewhere) not in "".join(_logs(out))


def test_capillarys_warnings_are_counted_in_the_summary(
        capillary_api: tuple[Any, Server]) -> None:
    api, server = capillary_api
    rows = [{"mobile": _mobile(c), "commChannels": [
        {"type": "email", "value": f"n{n}@example.com", "verified": False, "primary": True,
         "meta": {"residence": True}}]} for n, c in enumerate(api.customers[:3])]
    code, out, stderr = write(capillary.config(server.url), activation("update", ["mobile"]),
                              [*(rec(r) for r in rows), state(1)])
    assert code == 0, stderr
    assert [code for _, code in api.warned] == [capillary.UNVERIFIED_EMAIL] * 3
    (summary,) = [line for line in _logs(out) if line.startswith("Stream 'segment' done")]
    assert "3 updated" in summary
    assert "the vendor's warnings: 3 \u00d7 Customer email is not verified (8069)" in summary
    channel = next(ch for ch in api.find("mobile", _mobile(api.customers[0]))["profiles"][0][
        "commChannels"] if ch["type"] == "email")
    assert channel == rows[0]["commChannels"][0]


def test_a_capillary_add_applied_and_answered_503_makes_one_customer(
        capillary_api: tuple[Any, Server]) -> None:
    api, server = capillary_api
    api.set_faults(scheduled=["", "applied-503"])  # the PUT's 8015, then the add
    mobile = capillary.unknown_mobiles(1)[0]
    code, _, stderr = write(capillary.config(server.url),
                              activation("append_dedup", ["mobile"]),
                              [rec({"mobile": mobile, "firstName": "Kai"}), state(1)])
    assert code == 0, stderr
    assert api.faulted == ["applied-503"]
    assert len(api.added) == 1 and api.find("mobile", mobile)["id"] == api.added[0]
    assert [r.method for r in api.requests].count("POST") == 1


def test_a_malomo_create_applied_and_answered_503_makes_one_customer(
        malomo_api: tuple[Any, Server]) -> None:
    api, server = malomo_api
    pages = len(api.customers) // 10 + 1  # the listing's pages, the last one empty
    api.set_faults(scheduled=[""] * pages + ["applied-503"])
    code, _, stderr = write(malomo.config(server.url), activation("append_dedup", ["email"]),
                              [rec({"email": "new.gateway@example.com", "first_name": "Kai"}),
                               state(1)])
    assert code == 0, stderr
    assert api.faulted == ["applied-503"]
    made = [c for c in api.customers if c.get("email") == "new.gateway@example.com"]
    assert len(made) == 1
    assert [r.method for r in api.requests].count("POST") == 1
