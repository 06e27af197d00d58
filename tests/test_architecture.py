"""The layout of docs/architecture.md is checked, not hoped for: import contracts and file sizes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGES = ("posture", "web", "azure_emulator", "bench", "tests")
MAX_LINES = 400
# Exempt by the rule: the emulator, migrations and the catalog's data tables.
EXEMPT = ("azure_emulator/", "posture/migrations/", "posture/catalog/controls.py")


def lint_imports(cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--no-logo", *extra], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_import_contracts_hold() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("layout")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("posture/collect/errors.py", "import web", "web may import posture, never the reverse"),
        ("posture/models/scans.py", "import azure_emulator", "Production code never imports"),
        ("web/views/common.py", "import bench", "Production code never imports"),
        ("posture/normalize/__init__.py", "from posture.store import bulk", "each step imports only the steps below it"),
        ("posture/scans/finish.py", "from posture import tasks", "each step imports only the steps below it"),
        ("web/views/scans.py", "import posture.tasks", "nothing imports posture.tasks"),
        ("posture/scans/start.py", "from posture.scopes import scope_save", "each step imports only the steps below it"),
    ],
)
def test_an_import_against_the_layout_fails_the_suite(tree_copy: Path, module: str, line: str, broken: str) -> None:
    path = tree_copy / module
    original = path.read_text()
    try:
        path.write_text(original + f"\n\ndef _breach() -> None:\n    {line}  # noqa\n")
        result = lint_imports(tree_copy, "--no-cache")
    finally:
        path.write_text(original)
    assert result.returncode == 1, result.stdout + result.stderr
    assert broken in result.stdout.partition("Broken contracts")[2], result.stdout + result.stderr


def source_files() -> list[Path]:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    suffixes = {".py", ".html", ".css", ".js", ".sh"}
    return [ROOT / name for name in tracked if Path(name).suffix in suffixes and not name.startswith(EXEMPT)]


def test_no_source_file_is_over_400_lines() -> None:
    files = source_files()
    assert any(path.name == "tasks.py" for path in files)
    long = {str(path.relative_to(ROOT)): n for path in files if path.exists() and (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}
