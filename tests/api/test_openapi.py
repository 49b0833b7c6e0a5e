"""docs/openapi.yaml agrees with the running service: for every documented
path, an undocumented method (PATCH) is 405 and Allow lists exactly the
documented methods."""

import re

import pytest

from apitools import REPO, admin_token, allow_set, assert_problem

import yaml  # python3-yaml, installed by scripts/deps.sh test: missing is a failure

OPENAPI = REPO / "docs" / "openapi.yaml"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
DUMMY = {"id": "AAAAAAAAAAAAAAAAAAAAAA", "session_id": "AAAAAAAAAAAAAAAAAAAAAA",
         "sid": "AAAAAAAAAAAAAAAAAAAAAA", "user_id": "openapi-user", "user": "openapi-user"}
# the contract's routes (API.md "Routes"), with parameters written as {}
CONTRACT_ROUTES = {
    "/session": {"POST"},
    "/session/{}": {"GET", "DELETE"},
    "/session/{}/refresh": {"POST"},
    "/users/{}/sessions": {"GET", "DELETE"},
    "/validate": {"GET"},
    "/healthz": {"GET"},
    "/readyz": {"GET"},
    "/metrics": {"GET"},
}


def load_paths():
    if not OPENAPI.is_file():
        return None, "%s does not exist" % OPENAPI
    with open(OPENAPI, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    paths = {}
    for path, item in (doc.get("paths") or {}).items():
        methods = {m.upper() for m in (item or {}) if m.lower() in HTTP_METHODS}
        paths[path] = methods
    return paths, None


PATHS, WHY = load_paths()


def shape(path):
    return re.sub(r"\{[^}]*\}", "{}", path)


def concrete(path):
    return re.sub(r"\{([^}]*)\}", lambda m: DUMMY.get(m.group(1), "x"), path)


def _require_doc():
    if PATHS is None:
        pytest.fail(WHY)
    if not PATHS:
        pytest.fail("%s documents no paths" % OPENAPI)


def test_openapi_documents_every_contract_route():
    _require_doc()
    documented = {}
    for path, methods in PATHS.items():
        documented.setdefault(shape(path), set()).update(methods)
    for route, methods in CONTRACT_ROUTES.items():
        assert route in documented, "openapi.yaml lacks %s" % route
        assert documented[route] == methods, (route, documented[route], methods)
    assert set(documented) == set(CONTRACT_ROUTES), \
        "openapi.yaml documents paths the contract does not have: %s" % (
            set(documented) - set(CONTRACT_ROUTES))


@pytest.mark.parametrize("path", sorted(PATHS) if PATHS else ["<openapi.yaml unavailable>"])
def test_undocumented_method_is_405_with_documented_allow(server, path):
    _require_doc()
    documented = PATHS[path]
    assert documented, "no methods documented for %s" % path
    assert "PATCH" not in documented, "PATCH is documented for %s" % path
    r = server.request("PATCH", concrete(path), token=admin_token())
    assert_problem(r, 405)
    assert allow_set(r) == documented, (path, r.headers.get("Allow"), documented)
