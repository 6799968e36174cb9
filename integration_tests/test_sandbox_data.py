"""The sandbox's fake people look like real ones: their e-mail addresses are well formed."""

from __future__ import annotations

import json
import re

import pytest

from integration_tests.sandbox import VENDORS

ADDRESS = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_sandbox_addresses_have_no_two_dots_in_a_row_nor_a_dot_at_an_end(vendor: str) -> None:
    api = VENDORS[vendor].Api()
    text = json.dumps(vars(api), default=str, ensure_ascii=False)
    addresses = set(ADDRESS.findall(text))
    assert len(addresses) > 50, "the sandbox should hold many addresses"
    local_parts = [a.partition("@")[0] for a in addresses]
    assert [p for p in local_parts if ".." in p or p.startswith(".") or p.endswith(".")] == []
