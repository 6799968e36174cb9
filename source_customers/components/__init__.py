"""The custom components the manifests name, as `source_declarative_manifest.components.X`.

That is the module the platform's `source-declarative-manifest` runner makes of the one
components file it is given (`manifests/components.py`, bundled from this package, the
masking and the runtime by `scripts/bundle.py`); `source-customers` registers this package
under the same name, so the manifests run unchanged in both.
"""

from source_customers.components.answers import JsonBodyErrorHandler, RetryAfter
from source_customers.components.capillary import (
    CapillaryTokenAuthenticator,
    MaskedListPartitionRouter,
    Md5BasicAuthenticator,
)
from source_customers.components.loke import SharedClientCredentialsOAuthenticator
from source_customers.components.okendo import (
    MaskedBasicHttpAuthenticator,
    OkendoCustomerLookup,
    OkendoNewCustomersReadFromStart,
    OkendoTypedValues,
)
from source_customers.components.paging import LastItemCursorPagination, NextLinkPagination

__all__ = [
    "CapillaryTokenAuthenticator",
    "JsonBodyErrorHandler",
    "LastItemCursorPagination",
    "MaskedBasicHttpAuthenticator",
    "MaskedListPartitionRouter",
    "Md5BasicAuthenticator",
    "NextLinkPagination",
    "OkendoCustomerLookup",
    "OkendoNewCustomersReadFromStart",
    "OkendoTypedValues",
    "RetryAfter",
    "SharedClientCredentialsOAuthenticator",
]
