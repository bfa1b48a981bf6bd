"""Installing like an application: a plain layout (no setuptools warning), templates and the example in the wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_layout_is_simple_so_an_editable_install_does_not_warn() -> None:
    """setuptools warns ("Editable installation … folders … may take precedence") whenever it must
    install a meta-path finder: that is when package-dir maps a package anywhere but its own folder."""
    editable_wheel = pytest.importorskip("setuptools.command.editable_wheel")
    options = PYPROJECT["tool"]["setuptools"]
    package_dir = options.get("package-dir", {})
    assert set(package_dir) == {""}
    assert editable_wheel._simple_layout(options["packages"], package_dir, str(ROOT))


def test_templates_and_the_example_stay_at_the_top_level() -> None:
    assert (ROOT / "daemon" / "templates").is_symlink()
    assert (ROOT / "daemon" / "templates").resolve() == (ROOT / "templates").resolve()
    assert (ROOT / "daemon" / "sample" / "config.example.yaml").resolve() == (ROOT / "config.example.yaml").resolve()


@pytest.mark.slow
def test_the_wheel_carries_templates_and_the_example(tmp_path: Path) -> None:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                          capture_output=True, text=True, timeout=300, env=env)
    if done.returncode != 0 and "No matching distribution" in done.stderr:
        pytest.skip("no package index reachable to fetch the build backend")
    assert done.returncode == 0, done.stderr
    assert "BuildBackendWarning" not in done.stderr
    wheel = next(tmp_path.glob("salvage-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "daemon/sample/config.example.yaml" in names
    assert "daemon/templates/missed_interview.txt.j2" in names
    assert not any(n.startswith(("tests/", "templates/", "benchmarks/")) for n in names)
