"""vcp_gateway stands alone: only the standard library and cryptography, never Django."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import requires

IMPORT_EVERYTHING = """
import importlib, pkgutil, sys
import vcp_gateway
for module in pkgutil.walk_packages(vcp_gateway.__path__, "vcp_gateway."):
    importlib.import_module(module.name)
print(",".join(sorted(name for name in sys.modules if name.startswith("vcp_gateway"))))
print(",".join(sorted(name for name in sys.modules if name.split(".")[0] == "django")))
"""


def test_importing_the_library_and_all_its_modules_never_imports_django(tmp_path):
    env = {name: value for name, value in os.environ.items() if name != "DJANGO_SETTINGS_MODULE"}

    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    library, django = result.stdout.splitlines()
    assert {"vcp_gateway.pinmap", "vcp_gateway.receipts", "vcp_gateway.usage", "vcp_gateway.demo"} <= set(
        library.split(",")
    )
    assert django == ""


def test_the_only_dependency_is_cryptography():
    assert requires("vcp-gateway") == ["cryptography>=43"]
