"""Root conftest: the CDK's standard-test hooks must be registered at the top level."""

pytest_plugins = ["airbyte_cdk.test.standard_tests.pytest_hooks"]
