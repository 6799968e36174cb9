"""Requests to a vendor, as its source manifest says to make them (authenticator, base_url,
headers, rate-limit budget), with the answers sorted as its writes manifest says: done, the
record refused, try again, or the whole sync cannot go on.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.interpolation.interpolated_string import InterpolatedString
from airbyte_cdk.sources.declarative.models import declarative_component_schema as schema
from airbyte_cdk.sources.declarative.parsers.manifest_component_transformer import (
    ManifestComponentTransformer,
)
from airbyte_cdk.sources.declarative.parsers.manifest_reference_resolver import (
    ManifestReferenceResolver,
)
from airbyte_cdk.sources.declarative.parsers.model_to_component_factory import (
    ModelToComponentFactory,
)
from airbyte_cdk.utils.traced_exception import AirbyteTracedException
from requests.adapters import DEFAULT_POOLSIZE, HTTPAdapter
from requests.structures import CaseInsensitiveDict

from source_customers.components.answers import (
    NOT_JSON,
    _json_body,
    request_host,
    retry_after_seconds,
    unreachable,
    value_at,
)
from source_customers.destination.errors import failed as _failed
from source_customers.destination.objects import Endpoint, Writes, body, fill
from source_customers.destination.pacing import pacer
from source_customers.vendors import load_manifest

MAX_TRIES = 7  # as the source's requests: 6 retries
CHECK_TRIES = 3  # someone is waiting on a check
TIMEOUT = (10.0, 60.0)  # connect, read: the source's requester's


@dataclass
class Answer:
    status: int
    body: Any
    codes: list[int] = field(default_factory=list)  # the vendor's error codes in the body
    message: str = ""
    lost: bool = False  # sent, maybe applied, and no answer came
    warnings: list[str] = field(default_factory=list)  # "message (code)" of each warning

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300 and not self.codes


def _component(factory: ModelToComponentFactory, definition: Mapping[str, Any],
               config: Mapping[str, Any]) -> Any:
    return factory.create_component(model_type=getattr(schema, definition["type"]),
                                    component_definition=definition, config=config)


class VendorHttp:
    """One vendor's requests for one sync, shared by the writing threads."""

    def __init__(self, writes: Writes, config: Mapping[str, Any], checking: bool = False) -> None:
        self.writes = writes
        self.config = {**writes.defaults, **{k: v for k, v in config.items() if v is not None}}
        self.tries = CHECK_TRIES if checking else MAX_TRIES
        self.checking = checking
        manifest = ManifestReferenceResolver().preprocess_manifest(load_manifest(writes.key))
        manifest = ManifestComponentTransformer().propagate_types_and_parameters("", manifest, {})
        factory = ModelToComponentFactory()
        definitions = manifest["definitions"]
        self.authenticator = _component(factory, definitions["authenticator"], self.config)
        self.base_url = str(InterpolatedString.create(
            definitions["base_url"], parameters={}).eval(self.config)).rstrip("/")
        headers = (definitions.get("requester") or {}).get("request_headers") or {}
        self.headers = {"Accept": "application/json", **{k: str(v) for k, v in headers.items()}}
        self.pacer = pacer(manifest.get("api_budget"),
                           lambda definition: _component(factory, definition, self.config))
        self.session = _session(self.base_url, int(self.config.get("num_workers") or 0))
        self._headers = CaseInsensitiveDict(self.session.headers)
        self._headers.update(self.headers)

    def values(self, record: Mapping[str, Any], key: str = "", value: Any = None
               ) -> dict[str, Any]:
        return {**self.config, **record, "$key": key, "$value": value}

    def send(self, endpoint: Endpoint, values: Mapping[str, Any],
             record: Mapping[str, Any] | None = None, idempotent: bool = True) -> Answer:
        """The vendor's answer to one request, retried as its manifest says. A request that
        may have been applied without an answer (a create) is not sent again here: its
        answer is `lost`, and the caller looks before it asks again."""
        url = self.base_url + fill(endpoint.path, values)
        query = {k: fill(v, values) for k, v in endpoint.query.items()}
        query = {k: v for k, v in query.items() if v != ""}
        payload = body(endpoint.body, record or {}, values) if endpoint.body is not None else None
        problem, asked = "", None
        for attempt in range(self.tries):
            if attempt:
                time.sleep(self._wait(attempt, asked))
            prepared = self.authenticator(self._prepare(endpoint.method, url, query, payload))
            try:
                response = self._paced(prepared)
            except requests.RequestException as error:
                why = unreachable(error)
                if why is not None:
                    problem = f"Could not connect to {request_host(error)} ({why}): check base_url."
                    if self.checking:
                        raise _failed(problem, FailureType.config_error) from None
                    continue
                if not idempotent:
                    return Answer(0, None, lost=True)
                problem = (f"{self.writes.vendor} gave no answer to {endpoint.method} "
                           f"{endpoint.path} ({type(error).__name__})")
                continue
            answer = self.read_answer(response)
            if response.status_code in self.writes.answers.fail_statuses:
                raise _failed(self._credentials_refused(endpoint, answer),
                              FailureType.config_error)
            if set(answer.codes) & self.writes.answers.fail_codes:
                raise _failed(self._refusal(endpoint, answer), FailureType.config_error)
            if response.status_code in self.writes.answers.retry_statuses or \
                    set(answer.codes) & self.writes.answers.retry_codes:
                if not idempotent and not self._unprocessed(response.status_code, answer.codes):
                    # A 5xx or 408 says nothing of whether a create was applied: the caller
                    # looks for it before it is sent again.
                    return Answer(response.status_code, answer.body, answer.codes,
                                  answer.message, lost=True)
                problem = self._refusal(endpoint, answer)
                asked = retry_after_seconds(response.headers.get("Retry-After"))
                continue
            if response.is_redirect:
                raise _failed(f"{self.writes.vendor} redirected {endpoint.method} "
                              f"{endpoint.path} (HTTP {response.status_code}); not followed, "
                              "as a write must not be sent elsewhere: check base_url.",
                              FailureType.config_error)
            return answer
        if problem.startswith("Could not connect to "):
            raise _failed(problem, FailureType.config_error)
        raise _failed(f"{problem}, {self.tries} times: the sync stopped; try again later.",
                      FailureType.transient_error)

    def _prepare(self, method: str, url: str, query: Mapping[str, Any],
                 payload: Any) -> requests.PreparedRequest:
        """The request `Session.prepare_request` would make, from the session's headers
        merged once: merging its settings again for every request (cookies aside) was a
        quarter of the CPU a write request costs here (profiled)."""
        prepared = requests.PreparedRequest()
        prepared.prepare(method=method, url=url, headers=self._headers, params=query,
                         json=payload, cookies=self.session.cookies)
        return prepared

    def _paced(self, prepared: requests.PreparedRequest) -> requests.Response:
        if self.pacer is None:
            return self.session.send(prepared, timeout=TIMEOUT, allow_redirects=False)
        with self.pacer.turn(prepared):
            return self.session.send(prepared, timeout=TIMEOUT, allow_redirects=False)

    def pause(self, attempt: int) -> None:
        """Waits before `attempt` (none before the first), as between retries."""
        if attempt:
            time.sleep(self._wait(attempt, None))

    def unreadable_listing(self, path: str, answer: Answer) -> AirbyteTracedException:
        """A page of the customers' list that is not one: no customer can be matched."""
        if 200 <= answer.status < 300:
            what = f"a {_kind(answer.body)} where a list of customers belongs"
        else:
            what = f"HTTP {answer.status}" + (f" ({answer.message})" if answer.message else "")
        return _failed(f"{self.writes.vendor} answered GET {path} with {what}. The customers "
                       "could not be listed to match the records, so nothing more was written; "
                       "check base_url, or try again later.", FailureType.transient_error)

    def gave_up(self, endpoint: Endpoint) -> AirbyteTracedException:
        return _failed(f"{self.writes.vendor} gave no answer to {endpoint.method} "
                       f"{endpoint.path}, {self.tries} times, and nothing it made can be "
                       "found: the sync stopped; try again later.",
                       FailureType.transient_error)

    def _wait(self, attempt: int, asked: float | None) -> float:
        """Seconds before the next attempt: as `Retry-After` asked, else 2, 4, 8 ... s
        (at most a minute), jittered so that the workers do not retry in step."""
        if asked is not None:
            if asked >= 300:
                raise _failed(f"{self.writes.vendor} asked to wait {asked:.0f} s before "
                              "retrying: stopped the sync rather than hold it. Try again later.",
                              FailureType.transient_error)
            return asked
        return min(60.0, 2.0 ** attempt) * (0.5 + random.random() / 2)

    def read_answer(self, response: requests.Response) -> Answer:
        """The vendor's answer as its writes manifest reads it; every response passes here
        (the agent's lookups keep the response itself too)."""
        # An empty body (Malomo's 204 to a DELETE) is no document: not parsed, which would
        # log the parser's complaint as an error.
        parsed = _json_body(response) if response.content.strip() else None
        document = None if parsed is NOT_JSON else parsed
        codes = []
        errors = value_at(document, self.writes.answers.error_codes_path) \
            if self.writes.answers.error_codes_path else None
        for item in errors if isinstance(errors, list) else []:
            try:
                codes.append(int(item.get("code")))
            except (AttributeError, TypeError, ValueError):
                continue
        found = value_at(document, self.writes.answers.warnings_path) \
            if self.writes.answers.warnings_path else None
        warnings = [_warning(w) for w in found if isinstance(w, Mapping)] \
            if isinstance(found, list) else []
        return Answer(response.status_code, document, codes, self._message(document),
                      warnings=[w for w in warnings if w])

    def _message(self, document: Any) -> str:
        for path in self.writes.answers.message_paths:
            found = value_at(document, path)
            if isinstance(found, str) and found:
                text = found
                break
            if isinstance(found, list):  # Capillary's [{code, message}]
                text = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in found
                                 if isinstance(e, Mapping))
                if text:
                    break
        else:
            text = ""
        reference = value_at(document, self.writes.answers.reference_path) \
            if self.writes.answers.reference_path else None
        if reference:
            text += f" ({self.writes.vendor} request_id: {reference})"
        return text[:300]

    def _unprocessed(self, status: int, codes: list[int]) -> bool:
        """Whether the answer says the request was not processed (429, Capillary's 461 and
        521): only then is a create sent again as it is."""
        answers = self.writes.answers
        return status in answers.unprocessed_statuses or bool(set(codes) & answers.retry_codes)

    def _credentials_refused(self, endpoint: Endpoint, answer: Answer) -> str:
        return (f"{self.writes.vendor} refused the credentials (HTTP {answer.status} to "
                f"{endpoint.method} {endpoint.path}: "
                f"{answer.message or 'no explanation given'}): check "
                f"{self.writes.answers.credentials}.")

    def _refusal(self, endpoint: Endpoint, answer: Answer) -> str:
        return (f"{self.writes.vendor} answered {endpoint.method} {endpoint.path} with HTTP "
                f"{answer.status}: {answer.message or 'no explanation given'}")


def _kind(document: Any) -> str:
    """A JSON value's kind in words, for an answer of the wrong shape."""
    if document is None:
        return "body that is not JSON"
    names = {dict: "JSON object", str: "string", bool: "boolean", int: "number", float: "number"}
    return names.get(type(document), type(document).__name__)


def _warning(item: Mapping[str, Any]) -> str:
    message = str(item.get("message") or "").strip()[:200]
    code = item.get("code")
    return f"{message} ({code})" if message and code is not None else message or (
        f"warning {code}" if code is not None else "")


def _session(base_url: str, workers: int) -> requests.Session:
    """A session that reads the environment (proxies, CA bundle) once, for the vendor's
    host: by default `requests` reads it again for every request, and looks for a .netrc
    file (which the authenticator's header overrides anyway): proxies alone took 8% of the
    interpreter's time in a profile of 4,000 Malomo writes. It keeps a connection for each
    worker: past its default 10, every request of the workers over it opened a new one."""
    session = requests.Session()
    pool = max(DEFAULT_POOLSIZE, workers)
    for prefix in ("https://", "http://"):
        session.mount(prefix, HTTPAdapter(pool_connections=pool, pool_maxsize=pool))
    settings = session.merge_environment_settings(base_url, {}, None, None, None)
    session.proxies.update(settings["proxies"])
    session.verify = settings["verify"]
    session.cert = settings["cert"]
    session.trust_env = False
    return session

