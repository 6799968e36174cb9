"""What must not leave the connector unmasked: secrets, and customers' personal data.

Secrets (credentials and what is derived from them) become `****`, by the CDK's own secret
filter. Personal data (e-mail addresses, phone numbers, customer identifiers) appears in
records, and anywhere else only masked: `z***@example.com`, `91***`. A value is registered
once, when the connector learns it (from the config), and is then masked in every form it
can take in an output line: as written, URL-encoded (a request's query string, as the
CDK's debug log quotes it) and JSON-escaped (a request body inside a log message).

`masked(text)` is applied to every message the connector prints but records and state
(`runtime/hooks.py` installs it where messages are written and log lines formatted), and
each registered form is also given to the CDK's secret filter, which covers the outputs that
bypass both (a traceback's text), as `****`.
"""

# No `from __future__ import annotations`: bundled into the platform's components file
# (scripts/bundle.py), where dataclasses cannot resolve string annotations.
import json
import threading
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

from airbyte_cdk.utils import airbyte_secrets_utils

# Shorter values are not personal data worth the cost of masking: masking "7" would mask
# every 7 in every message.
MIN_PERSONAL_LENGTH = 5


def mask(value: str) -> str:
    """`z***@example.com` for an address, `91***` for anything else: enough to find the entry
    in one's own list, too little to be personal data."""
    local, at, domain = value.partition("@")
    if at:
        return f"{local[:1]}***@{domain}"
    return f"{value[:2]}***" if len(value) >= MIN_PERSONAL_LENGTH else "***"


def _forms(value: str) -> set[str]:
    """`value` as it can appear in a line of output: as written, URL-encoded (either way a
    space can be), JSON-escaped, and JSON-escaped twice (a JSON body quoted in a message)."""
    escaped = json.dumps(value, ensure_ascii=False)[1:-1]
    forms = {value, quote(value, safe=""), quote(value), quote_plus(value), escaped,
             json.dumps(escaped, ensure_ascii=False)[1:-1]}
    forms |= {json.dumps(form, ensure_ascii=False)[1:-1] for form in set(forms)}
    return {form for form in forms if form}


class _Personal:
    """The personal values registered in this process, each form with its masked text."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.replacements: dict[str, str] = {}
        self.ordered: list[tuple[str, str]] = []  # the longest form first


# One registry per process, however many copies of this module are loaded (the platform's
# runner loads the components file under two names, beside the CLI's own modules).
_PERSONAL: _Personal = getattr(airbyte_secrets_utils, "_source_customers_personal", None) \
    or _Personal()
airbyte_secrets_utils._source_customers_personal = _PERSONAL  # type: ignore[attr-defined]


def register_personal(values: Iterable[object]) -> None:
    """Masks each value (an address, a phone number, an identifier) in every later output
    but records: in our messages as `mask(value)`, in the CDK's filtered ones as `****`."""
    new: dict[str, str] = {}
    for value in dict.fromkeys(str(v) for v in values if v is not None):
        if len(value) < MIN_PERSONAL_LENGTH:
            continue
        masked_text = json.dumps(mask(value), ensure_ascii=False)[1:-1]
        for form in _forms(value):
            if form not in _PERSONAL.replacements:
                new[form] = masked_text
    if not new:
        return
    with _PERSONAL.lock:
        _PERSONAL.replacements.update(new)
        _PERSONAL.ordered = sorted(_PERSONAL.replacements.items(), key=lambda f: -len(f[0]))
    for form in new:
        airbyte_secrets_utils.add_to_secrets(form)


def register_secret(value: str) -> None:
    """Masks `value` (a credential derived from the config) as `****` in every later output."""
    if value and airbyte_secrets_utils.filter_secrets(value) != "****":
        airbyte_secrets_utils.add_to_secrets(value)


def masked(text: str) -> str:
    """`text` with every registered personal value, in any of its forms, masked."""
    for form, replacement in _PERSONAL.ordered:
        if form in text:
            text = text.replace(form, replacement)
    return text
