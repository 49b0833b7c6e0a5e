"""A fresh Debian 12 machine (issue 10, point 11): the README's commands
need nothing that scripts/deps.sh does not install, and the project's docs
stand alone (nothing links outside the repository).

The real run on a bare debootstrap tree is scripts/fresh-check.sh's job
(in CI); this checks, on any machine, that each command the two README
commands and the README's curl block run is owned by a package that
scripts/deps.sh installs for that purpose.
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def deps_lists():
    text = (ROOT / "scripts" / "deps.sh").read_text()
    lists = {}
    for name in ("build_pkgs", "test_pkgs"):
        m = re.search(r'^%s="([^"]*)"' % name, text, re.M)
        assert m, "scripts/deps.sh has no %s" % name
        lists[name] = set(m.group(1).split())
    return lists


# What a minbase system lacks, by the step that needs it: command -> the
# package that brings it (perl-base, essential, is not enough for scan-build:
# it needs the full perl).
RUN_NEEDS = {"make": "make", "gcc": "gcc", "pkg-config": "pkg-config", "openssl": "openssl",
             "curl": "curl"}
TEST_NEEDS = {"scan-build": "clang-tools", "scan-build's perl modules": "perl",
              "clang": "clang", "cppcheck": "cppcheck", "clang-tidy": "clang-tidy",
              "redis-server": "redis-server", "nginx": "nginx-light", "mdb_stat": "lmdb-utils",
              "/usr/bin/python3 -m pytest": "python3-pytest"}


@pytest.mark.parametrize("command", sorted(RUN_NEEDS))
def test_run_command_needs_only_what_deps_run_installs(command):
    assert RUN_NEEDS[command] in deps_lists()["build_pkgs"], command


@pytest.mark.parametrize("command", sorted(TEST_NEEDS))
def test_test_command_needs_only_what_deps_test_installs(command):
    lists = deps_lists()
    assert TEST_NEEDS[command] in lists["build_pkgs"] | lists["test_pkgs"], command


def test_scan_build_runs_with_the_perl_installed():
    """scan-build is a perl script whose modules perl-base lacks."""
    out = subprocess.run(["perl", "-MFile::Temp", "-MTerm::ANSIColor", "-e", "1"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    first = Path(shutil.which("scan-build")).read_text(errors="replace").splitlines()[0]
    assert "perl" in first, first


def test_readme_commands_install_before_make():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Two commands.*?```sh\n(.*?)```", text, re.S).group(1)
    lines = [l.split("#")[0].strip() for l in block.splitlines() if l.strip()]
    assert lines == ["sh scripts/deps.sh run && make run",
                     "sh scripts/deps.sh test && make test"], lines
    ci = (ROOT / ".ci" / "run").read_text()
    assert "sh scripts/deps.sh test" in ci and "make test" in ci


def test_docs_stand_alone():
    docs = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md")) + \
        [ROOT / "docs" / "openapi.yaml"]
    for doc in docs:
        text = doc.read_text()
        assert "../shared" not in text and "shared/spec" not in text, \
            "%s points outside the repository" % doc.name
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
            if "://" in target or target.startswith("mailto:"):
                continue
            assert (doc.parent / target).resolve().exists(), \
                "%s links %s, which is not in the repository" % (doc.name, target)
    assert (ROOT / "docs" / "API.md").is_file()
