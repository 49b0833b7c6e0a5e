"""Fixtures for the black-box API suite.

Binaries come from $SESSIOND_BIN_DIR (default <repo>/build).  Every process is
started with a clean environment on a free loopback port, with its own LMDB
directory and a temporary working directory (so no stray .env is read).
At teardown each process gets SIGTERM (then SIGKILL after 5 s); a process that
exited on its own with a non-zero status, or whose stderr shows a sanitizer
report or the secret, fails the test.
"""

import pytest

import apitools
from apitools import Pool


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture(autouse=True)
def _contract_checks(request):
    """Every answer seen during a test: no 500, problem+json for 4xx/5xx,
    no echoed token or secret."""
    apitools.VIOLATIONS.clear()
    yield
    found = list(apitools.VIOLATIONS)
    apitools.VIOLATIONS.clear()
    if not found:
        return
    text = "contract violations in answers seen by this test:\n  " + "\n  ".join(found[:30])
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print(text)  # the test already failed: show them, do not report twice
        return
    pytest.fail(text, pytrace=False)


def _pool_fixture(request, tmp_path_factory, name):
    pool = Pool(tmp_path_factory, name)
    yield pool
    problems = pool.close()
    if problems:
        pytest.fail("server process problems:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def spawn(request, tmp_path_factory):
    """Function-scoped: spawn(binary="sessiond", env={...}, store=None, cwd=None)."""
    gen = _pool_fixture(request, tmp_path_factory, "srv")
    pool = next(gen)
    yield pool.start
    next(gen, None)


@pytest.fixture(scope="module")
def mspawn(request, tmp_path_factory):
    """Module-scoped variant of spawn, for servers shared by a test module."""
    gen = _pool_fixture(request, tmp_path_factory, "msrv")
    pool = next(gen)
    yield pool.start
    next(gen, None)


@pytest.fixture
def pool(request, tmp_path_factory):
    """Function-scoped Pool object, for tests that stop and restart processes."""
    gen = _pool_fixture(request, tmp_path_factory, "pool")
    p = next(gen)
    yield p
    next(gen, None)


@pytest.fixture(scope="module")
def server(mspawn):
    """One all-in-one sessiond with default settings, shared by a module."""
    return mspawn("sessiond")


@pytest.fixture
def user():
    return apitools.uid()


@pytest.fixture
def admin():
    return apitools.admin_token()
