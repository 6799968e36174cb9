"""Paging the vendors document and the CDK cannot follow on its own: a next-page link
that may be a path under the API's base path (LOKE, Okendo), and a bare array paged by its
last item's id (Malomo). Both stop a sync that would page forever.
"""

# No `from __future__ import annotations`: bundled into the platform's components file
# (scripts/bundle.py), where dataclasses cannot resolve string annotations.
from collections.abc import Mapping
from dataclasses import InitVar, dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.interpolation.interpolated_string import InterpolatedString
from airbyte_cdk.sources.declarative.requesters.paginators.strategies import (
    CursorPaginationStrategy,
)
from airbyte_cdk.sources.declarative.requesters.paginators.strategies.pagination_strategy import (
    PaginationStrategy,
)
from airbyte_cdk.sources.types import Config, Record, StreamSlice
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_customers.components.answers import refused_elsewhere


@dataclass(kw_only=True)
class NextLinkPagination(CursorPaginationStrategy):
    """Follows a vendor's next-page link (LOKE's `X-Next-Page`, Okendo's `nextUrl`) safely.

    The vendors hand back either an absolute URL or a path. A path is resolved *under*
    `url_base`, because Okendo's `nextUrl` is relative to its `/enterprise` base path and a
    plain URL join drops that prefix; LOKE's absolute paths resolve the same way against its
    path-less root. The CDK follows any link it is given, so this strategy also refuses a
    link to another scheme or host (the credentials would go with it) and a link that
    repeats the page just read, as asked for or as redirected (the API ignored its own
    cursor and would loop forever). The resolved URL is the token; use it with
    `page_token_option: RequestPath`.

    The link is read from the response header `link_header` (any letter case), or else from
    `cursor_value`. A header is read without parsing the body a second time: for pages of
    1,000 records that second parse was a tenth of a sync's CPU.
    """

    cursor_value: InterpolatedString | str = ""
    link_header: str = ""
    url_base: str = ""
    vendor: str = "The API"
    parameters: InitVar[Mapping[str, Any]]

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        self._url_base = InterpolatedString.create(self.url_base, parameters=parameters)

    # Whatever keywords this CDK passes (7.39 adds page_size_override and stream_slice to
    # what 7.30 passed) go on to its strategy as they came: the platform's runner may be
    # on another CDK than the one this package locks.
    def next_page_token(  # type: ignore[override]
        self,
        response: requests.Response,
        last_page_size: int,
        last_record: Record | None,
        last_page_token_value: Any | None = None,
        **more: Any,
    ) -> Any | None:
        if self.link_header:
            link = response.headers.get(self.link_header)
        else:
            link = super().next_page_token(
                response, last_page_size, last_record, last_page_token_value, **more)
        if not link:
            return None
        base = str(self._url_base.eval(self.config)).rstrip("/")
        url = resolve_next_link(base, str(link), self.vendor)
        # The page just read is the one asked for, whatever redirects made of its URL.
        read = {response.request.url, *(hop.request.url for hop in response.history)}
        if url == last_page_token_value or url in read:
            raise AirbyteTracedException(
                message=(
                    f"{self.vendor} returned the same next-page link twice, so paging would never "
                    "end. Stopped the sync instead of looping; no later page was read."
                ),
                internal_message=f"repeated next-page link from {response.request.url}",
                failure_type=FailureType.system_error,
            )
        return url


def resolve_next_link(base: str, link: str, vendor: str = "The API") -> str:
    """The absolute URL of `link`, which must stay on `base`'s scheme and host."""
    parts = urlsplit(link)
    base_parts = urlsplit(base)
    if parts.scheme or parts.netloc:
        if (parts.scheme, parts.netloc) != (base_parts.scheme, base_parts.netloc):
            raise refused_elsewhere(f"{vendor} sent a next-page link", parts)
        return link
    path = link if link.startswith("/") else "/" + link
    base_path = base_parts.path.rstrip("/")
    if base_path and (path == base_path or path.startswith(base_path + "/")):
        return f"{base_parts.scheme}://{base_parts.netloc}{path}"
    return base + path




@dataclass
class LastItemCursorPagination(PaginationStrategy):
    """Pages a bare JSON array by a field of its last item (Malomo's `next=<last record's id>`).

    The cursor is read from the page as the API sent it, not from the last record emitted:
    a client-side incremental filter can drop every record of a page, and paging must go on
    past such a page. An empty page ends. An API that ignores the cursor answers with a page
    it already gave, which would be read forever, so a page that holds the very item it was
    asked to start after stops the sync with an error. Use it with a `page_token_option`
    that sends the token as the vendor's cursor parameter.
    """

    config: Config
    parameters: InitVar[Mapping[str, Any]]
    cursor_field: str = "id"
    vendor: str = "The API"

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        pass

    @property
    def initial_token(self) -> Any | None:
        return None

    def get_page_size(self) -> int | None:
        return None

    def next_page_token(
        self,
        response: requests.Response,
        last_page_size: int,
        last_record: Record | None,
        last_page_token_value: Any | None = None,
        page_size_override: int | None = None,
        stream_slice: StreamSlice | None = None,
    ) -> Any | None:
        try:
            page = response.json()
        except ValueError:
            return None
        if not isinstance(page, list) or not page:
            return None
        cursors = [item.get(self.cursor_field) if isinstance(item, Mapping) else None
                   for item in page]
        if last_page_token_value is not None and str(last_page_token_value) in map(str, cursors):
            raise AirbyteTracedException(
                message=(
                    f"{self.vendor} answered the request for the records after "
                    f"{last_page_token_value!r} with a page holding that record again: the API "
                    "ignored the paging cursor, so paging would never end. Stopped the sync "
                    "instead of looping; no later page was read."
                ),
                internal_message=f"page cursor not honoured by {response.request.url}",
                failure_type=FailureType.system_error,
            )
        cursor = cursors[-1]
        if cursor is None or cursor == "":
            raise AirbyteTracedException(
                message=(
                    f"{self.vendor} sent a page whose last record has no '{self.cursor_field}', "
                    "so the next page cannot be asked for. Stopped rather than skip records."
                ),
                failure_type=FailureType.system_error,
            )
        return str(cursor)
