"""Okendo's quirks: no customer list (each configured address is looked up), profile
values typed by a field beside them, a per-customer cursor that must not skip a customer
added later, and encoded credentials its debug log would print."""

# No `from __future__ import annotations`: bundled into the platform's components file
# (scripts/bundle.py), where dataclasses cannot resolve string annotations.
import json
import math
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from concurrent.futures import Future
from dataclasses import InitVar, dataclass
from typing import Any, ClassVar, TypeVar

from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.auth.token import BasicHttpAuthenticator
from airbyte_cdk.sources.declarative.interpolation.interpolated_string import InterpolatedString
from airbyte_cdk.sources.declarative.migrations.state_migration import StateMigration
from airbyte_cdk.sources.declarative.partition_routers.partition_router import PartitionRouter
from airbyte_cdk.sources.declarative.requesters.requester import Requester
from airbyte_cdk.sources.declarative.transformations import RecordTransformation
from airbyte_cdk.sources.types import Config, StreamSlice, StreamState
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_customers.components.answers import LOG, log_once
from source_customers.masking import mask, register_personal, register_secret
from source_customers.runtime.progress import PROGRESS, count_skip, expect_partitions

T = TypeVar("T")

@dataclass
class MaskedBasicHttpAuthenticator(BasicHttpAuthenticator):
    """Okendo's Basic auth (user ID : API key), with the encoded credentials masked.

    The CDK masks the API key as configured, but its debug log prints every request's
    headers, where `Basic base64(user:key)` gives the key away to anyone who decodes it: the
    encoded value is registered as a secret before any request is sent.
    """

    @property
    def token(self) -> str:
        header = str(super().token)
        register_secret(header.removeprefix("Basic "))
        return header


@dataclass
class OkendoCustomerLookup(PartitionRouter):
    """One partition per customer, because Okendo has no customer list: each configured
    e-mail address is resolved with `POST /customer_lookup` (the `requester`).

    Every stream partitions this way, and an address is looked up once per sync, however
    many streams need it: results are shared (per API root, user and address) by all
    instances, and up to `workers` lookups run at a time, in the configured order. Addresses
    compare case-insensitively (the first spelling is kept); an address with no customer
    (Okendo's 404) is skipped, logged masked and counted in a closing log line; two
    addresses of one customer yield that customer once. The address travels in the slice's
    `extra_fields`, not its partition, so it never becomes part of saved state, and it is
    registered with the CDK's secret filter before it is sent, so the CDK's own error logs
    (which quote request bodies) show `****`.

    Without a `requester` each distinct address is a partition as it is (the loyalty
    endpoints take the address itself). `access_probe`, if given, is sent once first: an
    answer of 403 (a store without the product the stream reads; its error handler warns)
    means no partition at all, rather than one refused request per address.
    """

    config: Config
    parameters: InitVar[Mapping[str, Any]]
    requester: Requester | None = None
    emails_field: str = "customer_emails"
    workers: int | str = 4  # may interpolate the config
    access_probe: Requester | None = None

    _lookups: ClassVar[dict[tuple[str, str, str], "Future[str | None]"]] = {}
    _lookups_lock: ClassVar[threading.Lock] = threading.Lock()

    def stream_slices(self) -> Iterable[StreamSlice]:
        addresses = [str(a) for a in self.config.get(self.emails_field) or []]
        register_personal(addresses)
        distinct: dict[str, str] = {}
        for address in addresses:
            distinct.setdefault(address.casefold(), address)
        if not distinct:
            log_once(
                ("no addresses", id(self.config)),
                f"Okendo: no {self.emails_field} configured, so the per-customer streams "
                "(customers, their profiles, activities and loyalty standing) are empty; the "
                "store's reviews and loyalty rules are read all the same.",
            )
            return
        if self.requester is None:
            if self.access_probe is None or self._has_access(self.access_probe):
                for address in distinct.values():
                    yield StreamSlice(partition={}, cursor_slice={},
                                      extra_fields={"email": address})
            return
        seen_customers: set[str] = set()
        unknown = 0
        workers = int(InterpolatedString.create(str(self.workers), parameters={}).eval(self.config))
        expect_partitions(len(distinct))
        found = _in_parallel(self._customer_id, list(distinct.values()), workers)
        for address, customer_id in zip(distinct.values(), found, strict=True):
            if customer_id is None:
                unknown += 1
            elif customer_id in seen_customers:
                LOG.info(
                    f"Okendo: {mask(address)} belongs to a customer already "
                    "read through another address; read it once."
                )
            else:
                seen_customers.add(customer_id)
                yield StreamSlice(
                    partition={"customer_id": customer_id},
                    cursor_slice={},
                    extra_fields={"email": address},
                )
        # One summary per sync, not one per stream.
        log_once(
            (str(self.config.get("base_url")), str(self.config.get("user_id")), *distinct),
            f"Okendo customer lookup: {len(addresses)} configured e-mail addresses, "
            f"{len(addresses) - len(distinct)} of them duplicates (looked up once), "
            f"{unknown} with no Okendo customer (skipped), {len(seen_customers)} customers found.",
        )

    @staticmethod
    def _has_access(probe: Requester) -> bool:
        response = probe.send_request(stream_slice=StreamSlice(partition={}, cursor_slice={}))
        return response is not None and response.status_code != 403

    def _customer_id(self, address: str) -> str | None:
        """The lookup's result, from the first stream that asked for it."""
        key = (str(self.config.get("base_url")), str(self.config.get("user_id")),
               address.casefold())
        with self._lookups_lock:
            pending = self._lookups.get(key)
            mine = pending is None
            if pending is None:
                pending = self._lookups[key] = Future()
        if mine:
            try:
                pending.set_result(self._look_up(address))
            except BaseException as error:
                pending.set_exception(error)
        return pending.result()

    def _look_up(self, address: str) -> str | None:
        assert self.requester is not None
        response = self.requester.send_request(
            stream_slice=StreamSlice(partition={}, cursor_slice={}),
            request_body_json={"email": address},
        )
        # The requester's error handler lets only 404 ("no such customer") through.
        if response is None or response.status_code == 404:
            LOG.info(
                f"Okendo has no customer with the e-mail address {mask(address)} "
                "(HTTP 404); skipped it."
            )
            count_skip("unknown address")
            return None
        try:
            customer_id = response.json().get("customerId")
        except (ValueError, AttributeError):
            customer_id = None
        if not customer_id:
            raise AirbyteTracedException(
                message=(
                    f"Okendo answered the lookup of {mask(address)} with HTTP "
                    f"{response.status_code} but no customerId; stopped rather than guess."
                ),
                failure_type=FailureType.system_error,
            )
        return str(customer_id)

    def get_stream_state(self) -> Mapping[str, StreamState] | None:
        return None  # nothing to resume: the addresses come from the config

    def get_request_params(
        self,
        *,
        stream_state: StreamState | None = None,
        stream_slice: StreamSlice | None = None,
        next_page_token: Mapping[str, Any] | None = None,
    ) -> Mapping[str, Any]:
        return {}

    def get_request_headers(
        self,
        *,
        stream_state: StreamState | None = None,
        stream_slice: StreamSlice | None = None,
        next_page_token: Mapping[str, Any] | None = None,
    ) -> Mapping[str, Any]:
        return {}

    def get_request_body_data(
        self,
        *,
        stream_state: StreamState | None = None,
        stream_slice: StreamSlice | None = None,
        next_page_token: Mapping[str, Any] | None = None,
    ) -> Mapping[str, Any] | str:
        return {}

    def get_request_body_json(
        self,
        *,
        stream_state: StreamState | None = None,
        stream_slice: StreamSlice | None = None,
        next_page_token: Mapping[str, Any] | None = None,
    ) -> Mapping[str, Any]:
        return {}


def _in_parallel(work: Callable[[str], T], items: list[str], workers: int) -> Iterator[T]:
    """`work` over `items`, up to `workers` at a time, results in the items' order.

    The threads are daemons and take no new item once the results are abandoned: a sync
    that fails while lookups are still retrying with backoff ends at once instead of
    waiting for them (a ThreadPoolExecutor's threads hold the interpreter's exit).
    """
    results: list[Future[T]] = [Future() for _ in items]
    pending = iter(range(len(items)))
    lock, abandoned = threading.Lock(), threading.Event()

    stream = getattr(PROGRESS.local, "stream", None)  # whose lookups these are

    def run() -> None:
        PROGRESS.local.stream = stream
        while not abandoned.is_set():
            with lock:
                index = next(pending, None)
            if index is None:
                return
            try:
                results[index].set_result(work(items[index]))
            except BaseException as error:  # handed to the caller, in order
                results[index].set_exception(error)

    for _ in range(max(1, min(workers, len(items)))):
        threading.Thread(target=run, name="okendo-lookup", daemon=True).start()
    try:
        for result in results:
            yield result.result()
    finally:
        abandoned.set()


@dataclass
class OkendoTypedValues(RecordTransformation):
    """Okendo sends every profile property's `value` as a string and names its real type in
    `valueType`: each property keeps `value` as sent and gains `typedValue`, the converted
    value (see `okendo_typed_value`)."""

    def transform(
        self,
        record: MutableMapping[str, Any],
        config: Config | None = None,
        stream_state: StreamState | None = None,
        stream_slice: StreamSlice | None = None,
    ) -> None:
        for prop in record.get("properties") or []:
            if isinstance(prop, MutableMapping):
                prop["typedValue"] = okendo_typed_value(prop.get("value"), prop.get("valueType"))


def okendo_typed_value(value: Any, value_type: Any) -> Any:
    """`value` converted by `value_type`; anything that does not parse stays as it came.

    boolean: `true`/`false` (any case); number: a JSON number; string-list: a JSON array;
    location and date-components: a JSON object. Other types (string, date, image, types
    added later) and values that are not strings are returned unchanged.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if value_type == "boolean" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    expected: tuple[type, ...] = {
        "number": (int, float),
        "string-list": (list,),
        "location": (dict,),
        "date-components": (dict,),
    }.get(str(value_type), ())
    if not expected:
        return value
    try:
        parsed = json.loads(text)
    except ValueError:
        return value
    if isinstance(parsed, bool) or not isinstance(parsed, expected):
        return value
    if isinstance(parsed, float) and not math.isfinite(parsed):
        return value
    return parsed


class OkendoNewCustomersReadFromStart(StateMigration):
    """A customer whose address was just added to `customer_emails` has never been read, yet
    the CDK starts a partition it has no cursor for at the stream's global cursor, which
    would skip that customer's older activities: the saved global cursor is dropped, so such
    a customer is read from `start_date` while customers already read keep their own cursor.
    """

    def should_migrate(self, stream_state: Mapping[str, Any]) -> bool:
        # Past the CDK's partition limit the state is one global cursor: left as it is.
        return "state" in stream_state and not stream_state.get("use_global_cursor")

    def migrate(self, stream_state: Mapping[str, Any]) -> Mapping[str, Any]:
        return {k: v for k, v in stream_state.items() if k not in ("state", "lookback_window")}

