"""The one masking helper: personal data masked in every form it takes in an output line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote, quote_plus

import pytest
from airbyte_cdk.utils.airbyte_secrets_utils import filter_secrets

from source_customers import masking

ADDRESS = "zoe.muller+vip@example.com"


@pytest.fixture(autouse=True)
def _registered() -> Iterator[None]:
    masking.register_personal([ADDRESS, "919876543210", "7"])
    yield


def test_mask_keeps_an_addresss_first_letter_and_domain_and_two_characters_else() -> None:
    assert masking.mask(ADDRESS) == "z***@example.com"
    assert masking.mask("919876543210") == "91***"
    assert masking.mask("abc") == "***"


@pytest.mark.parametrize("form", [ADDRESS, quote(ADDRESS, safe=""), quote_plus(ADDRESS),
                                  json.dumps(ADDRESS)[1:-1]])
def test_a_personal_value_is_masked_as_written_url_encoded_and_json_escaped(form: str) -> None:
    line = json.dumps({"message": f"GET /v2/customers/lookup?identifierValue={form}&x=1"})
    masked = masking.masked(line)
    assert form not in masked and "z***@example.com" in masked
    json.loads(masked)  # still a JSON line


def test_a_json_body_quoted_inside_a_message_is_masked() -> None:
    body = json.dumps({"email": ADDRESS})
    line = json.dumps({"message": f"Request body: {body}"})
    assert ADDRESS not in masking.masked(line)


def test_values_shorter_than_five_characters_are_left_alone() -> None:
    assert masking.masked("page 7 of 9") == "page 7 of 9"


def test_the_cdks_own_filter_masks_the_registered_forms_too() -> None:
    assert filter_secrets(f"url?e={quote_plus(ADDRESS)}") == "url?e=****"
