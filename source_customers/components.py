"""Custom CDK components for the vendor quirks that YAML cannot express.

This module is injected as-is into the platform's `source-declarative-manifest` runner
(`__injected_components_py`), so it imports nothing but the standard library and
`airbyte_cdk`, and every component is stateless: one retriever is shared by all threads.
"""

# No `from __future__ import annotations`: the platform's runner executes this file as a
# module it has not registered yet, and dataclasses cannot resolve string annotations there.
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
from airbyte_cdk.sources.types import Record, StreamSlice
from airbyte_cdk.utils.traced_exception import AirbyteTracedException


@dataclass
class NextLinkPagination(CursorPaginationStrategy):
    """Follows a vendor's next-page link (LOKE's `X-Next-Page`, Okendo's `nextUrl`) safely.

    The vendors hand back either an absolute URL or a path. A path is resolved *under*
    `url_base`, because Okendo's `nextUrl` is relative to its `/enterprise` base path and a
    plain URL join drops that prefix; LOKE's absolute paths resolve the same way against its
    path-less root. The CDK follows any link it is given, so this strategy also refuses a
    link to another scheme or host (the credentials would go with it) and a link that
    repeats the page just read (the API ignored its own cursor and would loop forever).
    The resolved URL is the token; use it with `page_token_option: RequestPath`.
    """

    url_base: str = ""
    vendor: str = "The API"
    parameters: InitVar[Mapping[str, Any]]

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        self._url_base = InterpolatedString.create(self.url_base, parameters=parameters)

    def next_page_token(
        self,
        response: requests.Response,
        last_page_size: int,
        last_record: Record | None,
        last_page_token_value: Any | None = None,
        page_size_override: int | None = None,
        stream_slice: StreamSlice | None = None,
    ) -> Any | None:
        link = super().next_page_token(
            response,
            last_page_size,
            last_record,
            last_page_token_value,
            page_size_override=page_size_override,
            stream_slice=stream_slice,
        )
        if not link:
            return None
        base = str(self._url_base.eval(self.config)).rstrip("/")
        url = resolve_next_link(base, str(link), self.vendor)
        if url in (last_page_token_value, response.request.url):
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
            raise AirbyteTracedException(
                message=(
                    f"{vendor} sent a next-page link to another host or scheme "
                    f"({parts.scheme}://{parts.netloc}); refused to follow it so that no "
                    "credential leaves the configured base_url."
                ),
                failure_type=FailureType.system_error,
            )
        return link
    path = link if link.startswith("/") else "/" + link
    base_path = base_parts.path.rstrip("/")
    if base_path and (path == base_path or path.startswith(base_path + "/")):
        return f"{base_parts.scheme}://{base_parts.netloc}{path}"
    return base + path
