"""The vendors' manifests, and the one spec that covers them all.

Imports neither the CDK nor jsonschema at the top: `source-customers spec` is answered from
here alone (`spec_message`), without loading the declarative framework it does not use.
"""

from __future__ import annotations

import copy
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from airbyte_cdk.models import ConnectorSpecification
    from jsonschema.exceptions import ValidationError

DOCUMENTATION_URL = "https://github.com/source-customers/source-customers#readme"


def _manifest_dir() -> Traversable:
    try:
        return files("source_customers.manifests")
    except ModuleNotFoundError:
        # Imported from a checkout rather than an installed wheel: the repository's folder.
        return Path(__file__).resolve().parent.parent / "manifests"


MANIFEST_DIR = _manifest_dir()


def _shipped() -> tuple[str, ...]:
    names = (p.name for p in MANIFEST_DIR.iterdir())
    # A vendor's reads; `<vendor>.writes.yaml` beside it declares the destination's writes,
    # `<vendor>.lookups.yaml` the MCP server's lookups.
    return tuple(sorted(n.removesuffix(".yaml") for n in names
                        if n.endswith(".yaml") and n.count(".") == 1))


VENDORS: tuple[str, ...] = _shipped()


@cache
def _manifest_text(vendor: str) -> str:
    return (MANIFEST_DIR / f"{vendor}.yaml").read_text(encoding="utf-8")


# libyaml's loader where PyYAML has it, as the CDK loads its own schema (`safe_load_yaml`):
# ten times faster than the pure-Python SafeLoader, and the same result for these files
# (unit_tests/test_speedups.py).
_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_manifest(vendor: str) -> dict[str, Any]:
    """A fresh copy of the vendor's manifest: the CDK mutates what it is given."""
    manifest: dict[str, Any] = yaml.load(_manifest_text(vendor), Loader=_FAST_LOADER)  # safe
    return manifest


def combined_spec() -> ConnectorSpecification:
    """One spec for every vendor: `vendor` selects the branch holding that vendor's fields.

    Each branch is the vendor manifest's own `connection_specification`, so the manifests
    stay the single source of truth.
    """
    from airbyte_cdk.models import ConnectorSpecification

    return ConnectorSpecification(documentationUrl=DOCUMENTATION_URL,
                                  connectionSpecification=combined_connection_specification())


def spec_message() -> str:
    """The SPEC message, as the CDK's serializer writes `combined_spec()` in one.

    Built from plain values, so that `spec` imports no CDK: the CDK's own serialization of
    the same spec is the reference (unit_tests/test_speedups.py), field order included.
    """
    import orjson

    spec = {
        "connectionSpecification": combined_connection_specification(),
        "documentationUrl": DOCUMENTATION_URL,
        # ConnectorSpecification's defaults, which its serializer writes.
        "supportsNormalization": False,
        "supportsDBT": False,
    }
    return orjson.dumps({"type": "SPEC", "spec": spec}).decode()


def combined_connection_specification() -> dict[str, Any]:
    """The JSON schema of every vendor's config: one `oneOf` branch per vendor."""
    branches = []
    for vendor in VENDORS:
        branch = copy.deepcopy(load_manifest(vendor)["spec"]["connection_specification"])
        branch.pop("$schema", None)
        branch["properties"]["vendor"] = {"title": "Vendor", "type": "string", "const": vendor}
        branch["required"] = ["vendor", *branch.get("required", [])]
        branches.append(branch)
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Customers (" + ", ".join(VENDORS) + ")",
        "type": "object",
        "required": ["vendor"],
        "properties": {
            "vendor": {
                "title": "Vendor",
                "description": "Whose API to read; the other fields follow from it.",
                "type": "string",
                "enum": list(VENDORS),
                "order": 0,
            }
        },
        "oneOf": branches,
    }


def config_problem(vendor: str, config: Any, spec: dict[str, Any] | None = None) -> str | None:
    """Why `config` does not fit the vendor's spec (its source's, unless `spec` is given),
    naming the field at fault; None if it fits.

    The CDK's own message is jsonschema's, which names a missing field but not a field of
    the wrong type or form ("123 is not of type 'string'"), and for a choice of
    credentials says only that none fits. The value of a secret field is never quoted.
    """
    from jsonschema import Draft7Validator
    from jsonschema.exceptions import relevance

    from source_customers.masking import mask

    spec = spec or load_manifest(vendor)["spec"]["connection_specification"]
    errors = list(Draft7Validator(spec).iter_errors(config))
    if not errors:
        return None
    # Not jsonschema's best_match: it descends into a oneOf by its own guess, often into a
    # branch the config did not choose.
    error = _branch_error(min(errors, key=relevance))
    where = [str(p) for p in error.absolute_path]
    schema = error.schema if isinstance(error.schema, dict) else {}
    # A value is quoted only if it is a plain value of a field that cannot hold a secret;
    # personal data (an e-mail address, a customer identifier) is quoted masked.
    quotable = not isinstance(error.instance, (dict, list)) and "airbyte_secret" not in str(schema)
    shown = mask(str(error.instance)) if where and where[0] in PERSONAL_FIELDS else \
        error.instance
    value = f" (got {shown!r:.60})" if quotable else ""
    rule = error.validator_value
    if error.validator == "required":
        missing = next(r for r in rule if r not in error.instance)
        return f"Config field '{_field([*where, missing])}' is missing."
    if error.validator == "oneOf":  # no branch's discriminator matched
        key, allowed = _discriminator(rule)
        chosen = error.instance.get(key) if isinstance(error.instance, dict) else None
        got = "" if chosen is None else f" (got {chosen!r:.60})"
        return f"Config field '{_field([*where, key])}' must be one of: {', '.join(allowed)}{got}."
    return f"Config field '{_field(where)}' {_rule(error.validator, rule, schema)}{value}."


# Config fields whose values are customers' personal data.
PERSONAL_FIELDS = frozenset({"customer_emails", "identifiers"})


def personal_values(config: Any) -> list[str]:
    """The config's personal data (lists of addresses, identifiers), to be masked."""
    values: list[str] = []
    for name in sorted(PERSONAL_FIELDS):
        field = config.get(name) if isinstance(config, dict) else None
        if isinstance(field, list):
            values += [str(v) for v in field if isinstance(v, (str, int))]
    return values


def _rule(validator: Any, rule: Any, schema: dict[str, Any]) -> str:
    """What a JSON-schema keyword asks of a value, in words."""
    if validator == "type":
        return f"must be of type {rule}"
    if validator == "pattern":
        return f"must be {schema.get('pattern_descriptor') or 'of the form ' + str(rule)}"
    if validator == "enum":
        return f"must be one of: {', '.join(map(str, rule))}"
    if validator == "minLength":
        return "must not be empty"
    if validator == "minItems":
        return f"must hold at least {rule} item{'s' if rule != 1 else ''}"
    if validator in ("minimum", "maximum"):
        return f"must be at {'least' if validator == 'minimum' else 'most'} {rule}"
    return f"is not valid ({validator}: {rule!r:.60})"


def _branch_error(error: ValidationError) -> ValidationError:
    """Within a choice (oneOf), the error of the branch the config chose by its discriminator."""
    from jsonschema.exceptions import relevance

    while error.validator == "oneOf" and error.context:
        branches: dict[Any, list[ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        chosen = [errs for errs in branches.values() if all(e.validator != "const" for e in errs)]
        if not chosen:
            return error
        error = min(chosen[0], key=relevance)
    return error


def _discriminator(branches: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """The property whose `const` tells a oneOf's branches apart, and its allowed values."""
    for key in branches[0].get("properties", {}):
        consts = [b.get("properties", {}).get(key, {}).get("const") for b in branches]
        if all(c is not None for c in consts):
            return key, [str(c) for c in consts]
    return "", []


def _field(path: list[str]) -> str:
    """`credentials.client_id`, `customer_emails[2]`."""
    text = ""
    for part in path:
        text += f"[{part}]" if part.isdigit() else (f".{part}" if text else part)
    return text
