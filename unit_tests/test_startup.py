"""How both commands import the CDK (source_customers/startup.py)."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from source_customers.startup import _without

IMPORT_THE_CDK = """
import importlib, sys
from source_customers.startup import imported
imported(lambda: importlib.import_module("airbyte_cdk"))
print("boto3" in sys.modules, "botocore" in sys.modules)
import boto3
print(boto3.__name__)
"""


@pytest.mark.skipif(importlib.util.find_spec("boto3") is None, reason="boto3 is not installed")
def test_boto3_is_not_imported_with_the_cdk_and_is_importable_after() -> None:
    done = subprocess.run([sys.executable, "-c", IMPORT_THE_CDK], capture_output=True,
                          text=True, check=True)
    assert done.stdout.split() == ["False", "False", "boto3"]


def test_a_load_that_needs_a_module_kept_out_is_loaded_again_with_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "kept_out_here.py").write_text("VALUE = 1\n")
    (tmp_path / "needs_kept_out.py").write_text("from kept_out_here import VALUE\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("kept_out_here", "needs_kept_out"):
        monkeypatch.delitem(sys.modules, name, raising=False)

    loaded = _without(("kept_out_here",), lambda: importlib.import_module("needs_kept_out"))

    assert loaded.VALUE == 1
    assert sys.modules["kept_out_here"] is not None


def test_a_module_kept_out_is_importable_once_the_load_is_done(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "optional_here.py").write_text("VALUE = 2\n")
    (tmp_path / "tries_optional.py").write_text(
        "try:\n    import optional_here\nexcept ImportError:\n    optional_here = None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("optional_here", "tries_optional"):
        monkeypatch.delitem(sys.modules, name, raising=False)

    loaded = _without(("optional_here",), lambda: importlib.import_module("tries_optional"))

    assert loaded.optional_here is None
    assert importlib.import_module("optional_here").VALUE == 2
