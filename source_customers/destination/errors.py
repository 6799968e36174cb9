"""The destination's two kinds of failure: inputs refused before any request (`Refused`), and
the sync stopped by what the vendor answered (`failed`, an Airbyte traced error)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airbyte_cdk.models import FailureType
    from airbyte_cdk.utils.traced_exception import AirbyteTracedException


class Refused(Exception):
    """Inputs that select nothing to do: a config or catalog error, said before any request."""


def failed(message: str, failure: FailureType) -> AirbyteTracedException:
    # Imported here: `spec` answers without importing the CDK.
    from airbyte_cdk.utils.traced_exception import AirbyteTracedException

    return AirbyteTracedException(message=message, internal_message=message, failure_type=failure)
