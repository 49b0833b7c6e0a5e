"""The route table of src/routes.c is the one list of routes: every other
list is checked against it, as each executable prints it (`--routes`):
the contract's routes, the processes serving each, docs/openapi.yaml (its
paths, its open routes, its table of processes) and deploy/nginx.conf's
routing."""

import re
import subprocess

import pytest

from apitools import BIN_DIR, BINARIES, REPO

import yaml  # python3-yaml, installed by scripts/deps.sh test

from test_openapi import CONTRACT_ROUTES, shape
from test_split import ROUTES as SPLIT_ROUTES

ALWAYS = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}


def table_of(name):
    """[(method, pattern, {executables}, auth)] as `name --routes` prints it."""
    path = BIN_DIR / name
    if not path.is_file():
        pytest.fail("executable %s not found (build first, or set SESSIOND_BIN_DIR)" % path)
    out = subprocess.run([str(path), "--routes"], capture_output=True, text=True, timeout=10,
                         check=True).stdout
    rows = []
    for line in out.splitlines():
        method, pattern, exes, auth = line.split()
        rows.append((method, pattern, set(exes.split(",")), auth))
    assert rows, "%s --routes printed nothing" % name
    return rows


@pytest.fixture(scope="module")
def table():
    return table_of("sessiond")


def test_every_executable_prints_the_one_table(table):
    for name in BINARIES:
        assert table_of(name) == table, name


def test_the_table_is_the_contract(table):
    got = {}
    for method, pattern, _, _ in table:
        got.setdefault(shape(pattern), set()).add(method)
    assert got == CONTRACT_ROUTES


def test_the_table_says_which_process_serves_what(table):
    for method, pattern, exes, _ in table:
        assert "sessiond" in exes, (method, pattern)
        if (method, pattern) in ALWAYS:
            assert exes == set(BINARIES), (method, pattern, exes)
    for name, routes in SPLIT_ROUTES.items():
        served = {(m, p) for m, p, exes, _ in table if name in exes} - ALWAYS
        assert served == routes, name


def test_only_health_readiness_and_metrics_are_open(table):
    for method, pattern, _, auth in table:
        assert (auth == "none") == ((method, pattern) in ALWAYS), (method, pattern, auth)
    assert {auth for m, p, _, auth in table if p == "/validate"} == {"session"}
    assert {auth for m, p, _, auth in table if p == "/session" and m == "POST"} == {"caller"}


def load_openapi():
    with open(REPO / "docs" / "openapi.yaml", encoding="utf-8") as f:
        return yaml.safe_load(f)


def test_openapi_documents_the_table(table):
    doc = load_openapi()
    documented = set()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method.upper() not in ("GET", "POST", "PUT", "DELETE", "PATCH"):
                continue
            documented.add((method.upper(), path))
            row = [t for t in table if t[0] == method.upper() and t[1] == path]
            assert row, "openapi.yaml documents %s %s, which the table lacks" % (method, path)
            # open routes say so with an empty security list; the rest inherit
            assert (op.get("security") == []) == (row[0][3] == "none"), (method, path)
    assert documented == {(m, p) for m, p, _, _ in table}


def test_openapi_process_table_matches(table):
    text = load_openapi()["info"]["description"]
    for name in SPLIT_ROUTES:
        row = re.search(r"^\| `%s` \| (.*) \|$" % name, text, re.M)
        assert row, "openapi.yaml's process table has no row for %s" % name
        listed = set(re.findall(r"`([A-Z]+) (/[^`]*)`", row.group(1)))
        assert listed == {(m, p) for m, p, exes, _ in table if name in exes} - ALWAYS, name


UPSTREAMS = {"sessiond_create": "createSession", "sessiond_read": "readSession",
             "sessiond_close": "closeSession"}


def nginx_routing():
    """(exact locations, prefix locations, regex locations in order, the
    method map) of the gateway."""
    conf = (REPO / "deploy" / "nginx.conf").read_text()
    exact, prefix, regex = {}, {}, []
    for m in re.finditer(r"location\s+(=\s+|~\s+)?([/^][^\s{]*)\s*\{(.*?)\}", conf, re.S):
        target = re.search(r"proxy_pass\s+http://([$\w]+)", m.group(3))
        target = target.group(1) if target else None
        if m.group(1) and m.group(1).strip() == "~":
            regex.append((m.group(2), target))
        else:
            (exact if m.group(1) else prefix)[m.group(2)] = target
    by_method = {}
    mm = re.search(r"map\s+\$request_method\s+\$sessiond_by_method\s*\{(.*?)\}", conf, re.S)
    for line in (mm.group(1) if mm else "").split(";"):
        parts = line.split()
        if len(parts) == 2:
            by_method[parts[0]] = parts[1]
    return exact, prefix, regex, by_method


def concrete(pattern):
    return pattern.replace("{id}", "AAAAAAAAAAAAAAAAAAAAAA").replace("{user_id}", "someone")


def test_the_gateway_sends_each_route_to_a_process_that_serves_it(table):
    exact, prefix, regex, by_method = nginx_routing()
    assert by_method, "deploy/nginx.conf has no map of $request_method to $sessiond_by_method"
    for method, pattern, exes, _ in table:
        if (method, pattern) in ALWAYS:
            continue  # answered by the gateway itself, or by any process
        path = concrete(pattern)
        matched = [target for rx, target in regex if re.search(rx, path)]
        if path in exact:  # nginx: an exact match, else a regex, else the longest prefix
            target = exact[path]
        elif matched:
            target = matched[0]
        else:
            longest = max((p for p in prefix if path.startswith(p)), key=len)
            target = prefix[longest]
        assert target, "nginx.conf does not proxy %s %s" % (method, pattern)
        if target == "$sessiond_by_method":
            target = by_method.get(method, by_method.get("default"))
        assert UPSTREAMS.get(target) in exes, (method, pattern, target)
