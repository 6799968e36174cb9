"""The MCP server: the four tools with descriptions a model can act on, over stdio, or over
streamable HTTP behind a bearer token.
"""

# No `from __future__ import annotations`: the SDK reads the tools' annotations, which name
# this module's locals (the configured vendors), to make their input schemas.
import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Annotated, Any

import anyio
from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from pydantic import BaseModel, Field

from source_customers.agent import changes
from source_customers.agent.tools import (
    ActivityResult,
    CustomerResult,
    FindResult,
    ToolProblem,
    Tools,
    UpdateResult,
)
from source_customers.agent.vendor import Vendor

INSTRUCTIONS = (
    "Looks up one customer across the configured customer platforms (Okendo, LOKE, Malomo, "
    "Capillary) and, when the server allows it, fixes her record in Capillary or Malomo. "
    "Start with find_customer; use the ids it returns with get_customer and "
    "customer_activity. update_customer previews unless apply is true and the server was "
    "started with --allow-writes: show the preview to the user before applying.")


class Identifier(BaseModel):
    name: str = Field(description="The identifier type, e.g. externalId, cardnumber, mobile.")
    value: str = Field(description="The identifier's value.")


def _capabilities(vendors: dict[str, Vendor]) -> str:
    lines = []
    for vendor in vendors.values():
        keys = [k for k in vendor.lookups.find if k != "identifier"]
        if vendor.lookups.identifier_names:
            keys.append("identifier (" + ", ".join(vendor.lookups.identifier_names) + ")")
        how = " (listed, then matched by address)" if \
            vendor.lookups.find.get("email") == "listed" else ""
        lines.append(f"- {vendor.key}: by {', '.join(keys)}{how}")
    return "\n".join(lines)


def _activity_kinds(vendors: dict[str, Vendor]) -> str:
    return "\n".join(
        f"- {v.key}: " + (", ".join(a.name for a in v.lookups.activity) or
                          "none (the customer record holds its loyalty and tier)")
        for v in vendors.values())


def _writable_fields(vendors: dict[str, Vendor]) -> str:
    described = []
    for vendor in vendors.values():
        obj = vendor.lookups.writes.objects.get("customers")
        if obj is None:
            continue
        keys = [k[0] for k in obj.matching_keys if len(k) == 1]
        described.append(f"{vendor.name}: match by {' or '.join(keys)}; fields "
                         f"{', '.join(changes.writable_fields(obj))}.")
    return " ".join(described)


def build(vendors: dict[str, Vendor], allow_writes: bool, deadline: float,
          host: str = "127.0.0.1", port: int = 8000) -> FastMCP:
    tools = Tools(vendors, allow_writes, deadline)
    server = FastMCP("customers", instructions=INSTRUCTIONS, host=host, port=port,
                     log_level="WARNING")
    writable = [v.key for v in vendors.values() if "customers" in v.lookups.writes.objects]

    async def call(job: Callable[[], Any]) -> Any:
        try:
            return await anyio.to_thread.run_sync(job)
        except ToolProblem as problem:
            raise ToolError(str(problem)) from None

    @server.tool(description=(
        "Find one customer in every configured vendor by e-mail, phone or identifier. "
        "Answers per vendor and key: found (the vendor's customer records, with their "
        "ids), not_found, cannot_look_up (the vendor cannot search by that key), failed "
        "(the vendor's error) or timed_out. What each vendor can find by:\n"
        + _capabilities(vendors)))
    async def find_customer(
        email: Annotated[str | None, Field(description="An e-mail address.")] = None,
        phone: Annotated[str | None, Field(
            description="A phone number, as the vendor stores it (e.g. +61412345678).")] = None,
        identifier: Annotated[Identifier | None, Field(
            description="A Capillary identifier: {name, value}.")] = None,
        vendors: Annotated[list[str] | None, Field(
            description="Only these vendors (default: all configured).")] = None,
    ) -> FindResult:
        ident = identifier.model_dump() if identifier is not None else None
        result: FindResult = await call(
            lambda: tools.find_customer(email, phone, ident, vendors))
        return result

    @server.tool(description=(
        "One vendor's customer by that vendor's own id (Okendo customerId, LOKE id, Malomo "
        "id), as find_customer returned it. Capillary answers cannot_look_up: it finds "
        "customers by identifier only (use find_customer)."))
    async def get_customer(
        vendor: Annotated[str, Field(description="One of: " + ", ".join(vendors))],
        id: Annotated[str, Field(description="The vendor's customer id.")],
    ) -> CustomerResult:
        result: CustomerResult = await call(lambda: tools.get_customer(vendor, id))
        return result

    @server.tool(description=(
        "A customer's related records, newest first, each with its kind:\n"
        + _activity_kinds(vendors)))
    async def customer_activity(
        vendor: Annotated[str, Field(description="One of: " + ", ".join(vendors))],
        id: Annotated[str, Field(description="The vendor's customer id.")],
        limit: Annotated[int, Field(description="At most this many records of each kind.")
                         ] = 50,
    ) -> ActivityResult:
        result: ActivityResult = await call(lambda: tools.customer_activity(vendor, id, limit))
        return result

    @server.tool(description=(
        "Change fields of one customer in " + (" or ".join(writable) or "no vendor") + ". "
        "Without apply, or on a server started without --allow-writes (this one "
        + ("allows writes" if allow_writes else "does not") + "), nothing is sent: the "
        "answer is a preview, the customer as she is and each field from what to what. "
        "With apply on a server that allows writes, the change is applied as the "
        "destination applies a sync's rows, and the answer is updated, unchanged or "
        "rejected with the reason. " + _writable_fields(vendors)))
    async def update_customer(
        vendor: Annotated[str, Field(description="capillary or malomo")],
        match: Annotated[dict[str, str], Field(
            description="One matching key and its value, e.g. {\"email\": \"a@b.com\"}.")],
        changes: Annotated[dict[str, Any], Field(
            description="The fields to change, named as the vendor's writes name them.")],
        apply: Annotated[bool, Field(description="Send the change (default false).")] = False,
    ) -> UpdateResult:
        if vendor not in writable and vendor in vendors:
            raise ToolError(f"{vendors[vendor].name} takes no writes here; "
                            f"update_customer writes to: {', '.join(writable) or 'none'}.")
        result: UpdateResult = await call(
            lambda: tools.update_customer(vendor, match, changes, apply))
        return result

    return server


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def bearer(app: App, token: str) -> App:
    """Every HTTP request must carry `Authorization: Bearer <token>`; 401 otherwise."""
    expected = f"Bearer {token}".encode()

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, expected):
                await send({"type": "http.response.start", "status": 401, "headers": [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", b'Bearer realm="customers-mcp"')]})
                await send({"type": "http.response.body", "body": (
                    b'{"error": "missing or wrong bearer token: send Authorization: Bearer '
                    b'<the CUSTOMERS_MCP_TOKEN the server was started with>"}')})
                return
        await app(scope, receive, send)

    return guarded
