"""The contributor side: the suite drops a schema only of a database named like a test one;
README links stay inside the repository and lead to files that exist; CI installs chromium
without recommends; the test runner shows why tests were skipped."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import refuse_non_test_database

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["maxxit", "production", "postgres", "app_test"])
def test_a_database_not_named_like_a_test_one_is_never_dropped(name: str) -> None:
    with pytest.raises(pytest.UsageError, match="starts with 'test'"):
        refuse_non_test_database(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}")


@pytest.mark.parametrize("name", ["test", "test_ux", "tests", "Test_lead"])
def test_test_databases_may_be_reset(name: str) -> None:
    refuse_non_test_database(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}")


def test_readme_links_only_files_inside_the_repository() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)", readme) + re.findall(r"`(\.\./[^`]+)`", readme)
    local = [t for t in targets if not re.match(r"[a-z]+:", t)]
    assert local, "the README links its docs"
    for target in local:
        path = (ROOT / target).resolve()
        assert path.is_relative_to(ROOT), f"{target} is outside the repository"
        assert path.exists(), f"{target} does not exist"
    assert "docs/design.md" in local


def test_ci_installs_chromium_without_recommends_and_shows_skip_reasons() -> None:
    ci = (ROOT / ".ci" / "run").read_text("utf-8")
    installs = [line for line in ci.splitlines() if "apt-get install" in line]
    assert installs and all("--no-install-recommends" in line for line in installs)
    assert " -rs " in (ROOT / "tests" / "run.sh").read_text("utf-8")
