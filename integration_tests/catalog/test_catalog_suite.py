"""Each folder of `make catalog` under the CDK's standard suite, as the catalog's CI runs it:
the suite the CDK picks from the folder's metadata.yaml (`create_connector_test_suite`, a
manifest-only connector), which injects the folder's manifest.yaml and its own
components.py into the config of the `source-declarative-manifest` runner, then runs spec,
check, discover and read from its acceptance-test-config.yml against the sandbox."""

from __future__ import annotations

from airbyte_cdk.test.standard_tests.declarative_sources import DeclarativeSourceTestSuite
from airbyte_cdk.test.standard_tests.util import create_connector_test_suite

from integration_tests.catalog.conftest import FOLDERS

for _vendor, _folder in FOLDERS.items():
    _suite = create_connector_test_suite(connector_directory=_folder)
    assert issubclass(_suite, DeclarativeSourceTestSuite), _suite  # read as manifest-only
    _name = f"TestCatalog{_vendor.title()}"
    globals()[_name] = type(_name, (_suite,), {})
