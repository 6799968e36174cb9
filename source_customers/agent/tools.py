"""The four tools, apart from the protocol: arguments checked, each vendor asked in its own
thread, and every call answered within the deadline, naming a vendor that did not answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from airbyte_cdk.utils.airbyte_secrets_utils import filter_secrets
from typing_extensions import TypedDict

from source_customers import masking
from source_customers.agent import changes as writes
from source_customers.agent.vendor import Answer, Vendor

LOG = logging.getLogger("customers-mcp")
DEFAULT_DEADLINE = 30.0


class ToolProblem(ValueError):
    """Arguments a tool cannot take; the message says what to fix."""


class VendorResult(TypedDict):
    vendor: str
    looked_up_by: str
    status: str  # found, not_found, cannot_look_up, failed, timed_out
    customers: list[dict[str, Any]]
    message: str
    waited_for_rate_limit_seconds: float


class FindResult(TypedDict):
    results: list[VendorResult]


class CustomerResult(TypedDict):
    vendor: str
    status: str
    customer: dict[str, Any] | None
    message: str


class ActivityItem(TypedDict):
    kind: str  # the source stream the record belongs to
    record: dict[str, Any]


class ActivityResult(TypedDict):
    vendor: str
    status: str
    records: list[ActivityItem]
    message: str


class UpdateResult(TypedDict):
    vendor: str
    applied: bool
    not_applied_because: str
    customer_before: dict[str, Any] | None
    changes: list[dict[str, Any]]
    outcome: str  # preview, updated, unchanged, rejected, not_found, failed
    reason: str
    customer_after: dict[str, Any] | None


class Tools:
    def __init__(self, vendors: Mapping[str, Vendor], allow_writes: bool,
                 deadline: float = DEFAULT_DEADLINE) -> None:
        self.vendors = dict(vendors)
        self.allow_writes = allow_writes
        self.deadline = deadline
        # Threads outlive a call that timed out: enough of them that one slow vendor's
        # leftovers do not queue another's lookups.
        self.pool = ThreadPoolExecutor(max_workers=8 * max(1, len(self.vendors)),
                                       thread_name_prefix="lookup")

    # --- the tools ----------------------------------------------------------------------
    def find_customer(self, email: str | None, phone: str | None,
                      identifier: Mapping[str, Any] | None,
                      vendors: list[str] | None) -> FindResult:
        keys: list[tuple[str, Any]] = []
        if email is not None:
            if "@" not in email.strip():
                raise ToolProblem("email must be an e-mail address (name@domain).")
            keys.append(("email", email.strip()))
        if phone is not None:
            if not any(c.isdigit() for c in phone):
                raise ToolProblem("phone must hold the number's digits, e.g. +61412345678.")
            keys.append(("phone", phone.strip()))
        if identifier is not None:
            if not identifier.get("name") or not identifier.get("value"):
                raise ToolProblem("identifier needs both 'name' (an identifier type, e.g. "
                                  "externalId) and 'value'.")
            keys.append(("identifier", {"name": str(identifier["name"]),
                                        "value": str(identifier["value"])}))
        if not keys:
            raise ToolProblem("Give at least one of email, phone or identifier.")
        chosen = self._chosen(vendors)
        masking.register_personal([v["value"] if isinstance(v, Mapping) else v
                                   for _, v in keys])
        jobs = {(name, key): (lambda v=self.vendors[name], k=key, x=value: v.find(k, x))
                for name in chosen for key, value in keys}
        answers = self._within_deadline(jobs)
        results = [VendorResult(
            vendor=name, looked_up_by=key, status=a.status, customers=a.records,
            message=a.message or _waited(self.vendors[name], a),
            waited_for_rate_limit_seconds=a.waited_seconds)
            for (name, key), a in answers.items()]
        LOG.info(masking.masked("find_customer by " + ", ".join(
            f"{k} {v['value'] if isinstance(v, Mapping) else v}" for k, v in keys) + ": " +
            "; ".join(f"{r['vendor']} {r['status']} {len(r['customers'])}" for r in results)))
        return FindResult(results=results)

    def get_customer(self, vendor: str, ident: str) -> CustomerResult:
        self._chosen([vendor])
        if not ident:
            raise ToolProblem("id must be the vendor's customer id (not empty).")
        masking.register_personal([ident])
        answer = self._one(vendor, lambda: self.vendors[vendor].get(ident))
        LOG.info(masking.masked(f"get_customer {vendor} {ident}: {answer.status}"))
        return CustomerResult(vendor=vendor, status=answer.status,
                              customer=answer.records[0] if answer.records else None,
                              message=answer.message)

    def customer_activity(self, vendor: str, ident: str, limit: int) -> ActivityResult:
        self._chosen([vendor])
        if not ident:
            raise ToolProblem("id must be the vendor's customer id (not empty).")
        if not 1 <= limit <= 500:
            raise ToolProblem("limit must be between 1 and 500.")
        masking.register_personal([ident])
        answer = self._one(vendor, lambda: self.vendors[vendor].activity(ident, limit))
        LOG.info(masking.masked(f"customer_activity {vendor} {ident}: {answer.status} "
                                f"{len(answer.records)}"))
        return ActivityResult(vendor=vendor, status=answer.status,
                              records=[ActivityItem(kind=r["kind"], record=r["record"])
                                       for r in answer.records],
                              message=answer.message)

    def update_customer(self, vendor: str, match: Mapping[str, Any],
                        changes: Mapping[str, Any], apply: bool) -> UpdateResult:
        self._chosen([vendor])
        target = self.vendors[vendor]
        try:
            key, value = writes.check(target, match, changes)
        except writes.BadChanges as error:
            raise ToolProblem(str(error)) from None
        masking.register_personal([value, *[v for v in changes.values()
                                            if isinstance(v, str)]])
        result: UpdateResult | Answer = self._one(
            vendor, lambda: self._update(target, key, value, changes, apply))
        if isinstance(result, Answer):  # timed out or failed before any outcome
            return UpdateResult(vendor=vendor, applied=False, not_applied_because=result.message,
                                customer_before=None, changes=[], outcome=result.status,
                                reason=result.message, customer_after=None)
        LOG.info(masking.masked(f"update_customer {vendor} {key} {value}: "
                                f"{result['outcome']} {result['reason']}"))
        return result

    # --- machinery ----------------------------------------------------------------------
    def _update(self, target: Vendor, key: str, value: Any, changes: Mapping[str, Any],
                apply: bool) -> UpdateResult | Answer:
        before = _guarded(target, lambda: target.current(key, value))
        if isinstance(before, Answer):
            return before
        diff = writes.diff(target, before, changes) if before is not None else []
        why = "" if apply and self.allow_writes else (
            "apply is false: this is a preview, and nothing was sent" if not apply else
            "the server was started without --allow-writes: nothing was sent")
        result = UpdateResult(vendor=target.key, applied=False, not_applied_because=why,
                              customer_before=before, changes=diff, outcome="preview",
                              reason="", customer_after=None)
        if before is None:
            result["outcome"] = "not_found"
            result["not_applied_because"] = why or (
                f"no {target.name} customer has this {key}: nothing was sent")
            result["reason"] = f"no customer has this {key}"
            return result
        if why:
            return result
        outcome = _guarded(target, lambda: writes.apply(target, key, value, changes, before))
        if isinstance(outcome, Answer):
            return outcome
        after = _guarded(target, lambda: target.current(key, changes.get(key, value)))
        result["applied"] = outcome.kind == "updated"
        result["outcome"] = outcome.kind
        result["reason"] = filter_secrets(
            "; ".join(p for p in (outcome.reason, outcome.message) if p))
        result["customer_after"] = None if isinstance(after, Answer) else after
        return result

    def _chosen(self, names: list[str] | None) -> list[str]:
        if names is None or names == []:
            return list(self.vendors)
        unknown = [n for n in names if n not in self.vendors]
        if unknown:
            raise ToolProblem(f"Vendor {', '.join(repr(n) for n in unknown)} is not "
                              f"configured on this server; it has: {', '.join(self.vendors)}.")
        return list(dict.fromkeys(names))

    def _one(self, vendor: str, job: Callable[[], Any]) -> Any:
        return self._within_deadline({(vendor, ""): job})[(vendor, "")]

    def _within_deadline(self, jobs: Mapping[tuple[str, str], Callable[[], Any]]
                         ) -> dict[tuple[str, str], Any]:
        futures: dict[tuple[str, str], Future[Any]] = {
            k: self.pool.submit(job) for k, job in jobs.items()}
        wait(list(futures.values()), timeout=self.deadline)
        answers: dict[tuple[str, str], Any] = {}
        for (name, key), future in futures.items():
            vendor = self.vendors[name]
            if not future.done():
                answers[(name, key)] = Answer(name, "timed_out", message=(
                    f"{vendor.name} did not answer within {self.deadline:g} s; the other "
                    "vendors' answers are complete. Ask again later."))
                continue
            error = future.exception()
            if error is not None:
                LOG.error(filter_secrets(masking.masked(
                    f"{vendor.name}: {type(error).__name__}: {error}")))
                answers[(name, key)] = Answer(name, "failed", message=(
                    f"{vendor.name}: the lookup failed ({type(error).__name__})."))
                continue
            answers[(name, key)] = _clean(future.result())
        return answers


def _waited(vendor: Vendor, answer: Answer) -> str:
    """Says so when the vendor's rate limit, not the vendor, made the answer slow."""
    if answer.waited_seconds < 0.1:
        return ""
    return (f"{vendor.name}'s rate limit held this lookup for {answer.waited_seconds:g} s "
            "(requests are paced as a sync paces them).")


def _guarded(vendor: Vendor, job: Callable[[], Any]) -> Any:
    """The job's value, or an Answer saying how the vendor failed."""
    failed = vendor.run(lambda: [job()])
    if failed.status == "failed":
        return failed
    return failed.records[0] if failed.records else None


def _clean(result: Any) -> Any:
    """A result's messages without secrets (a vendor's error could quote one)."""
    if isinstance(result, Answer):
        result.message = filter_secrets(result.message)
    return result
