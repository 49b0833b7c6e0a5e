"""deploy/grafana/sessionservice.json and deploy/prometheus.yml (DEPLOY.md,
section 4) against the real service, so neither can rot: every metric and
label the dashboard's PromQL uses is exported by /metrics of a running
process (on each store, and across the three split processes), the panels
operators need are there, every panel has the datasource variable, and
Prometheus scrapes every process of docker-compose.yml (and, in the
commented block, the systemd unit) on /metrics.
"""

import json
import re

import pytest

from apitools import BINARIES, REPO, make_token, uid, wait_until

import yaml  # python3-yaml, installed by scripts/deps.sh test: missing is a failure

DASHBOARD = REPO / "deploy" / "grafana" / "sessionservice.json"
PROMETHEUS = REPO / "deploy" / "prometheus.yml"
COMPOSE = REPO / "docker-compose.yml"
UNIT = REPO / "deploy" / "sessiond.service"

# Series Prometheus makes itself for every target; no process exports them.
SYNTHETIC = {"up"}
# Metrics exported on some stores only (CONTRACT-NOTES, "Metrics"): the
# dashboard may use them, and on the other stores they must really be absent.
STORE_ONLY = {"sessiond_sessions_live": {"lmdb"}}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

# --------------------------------------------------------------------------
# PromQL: the metric names, label names and functions an expression uses
# --------------------------------------------------------------------------

FUNCTIONS = set("""
abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes
clamp clamp_max clamp_min cos cosh count_over_time day_of_month day_of_week day_of_year
days_in_month deg delta deriv double_exponential_smoothing end exp floor histogram_avg
histogram_count histogram_fraction histogram_quantile histogram_stddev histogram_stdvar
histogram_sum holt_winters hour idelta increase irate label_join label_replace last_over_time
ln log10 log2 mad_over_time max_over_time min_over_time minute month pi predict_linear
present_over_time quantile_over_time rad rate resets round scalar sgn sin sinh sort
sort_by_label sort_by_label_desc sort_desc sqrt start stddev_over_time stdvar_over_time
sum_over_time tan tanh time timestamp vector year
""".split())
AGGREGATIONS = set("avg bottomk count count_values group limit_ratio limitk max min quantile "
                   "stddev stdvar sum topk".split())
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = GROUPING | {"bool", "offset", "and", "or", "unless", "atan2"}
NUMBER_WORDS = {"inf", "nan"}

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<var>\$\{[^}]*\}|\$\w+|\[\[[^\]]*\]\])
  | (?P<range>\[[^\]]*\])
  | (?P<num>(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)[a-zA-Z0-9_]*)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^<>=(){},@])
""", re.X)


def tokens(expr):
    out, pos = [], 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m:
            raise ValueError("PromQL %r: cannot read %r" % (expr, expr[pos:pos + 20]))
        if m.lastgroup not in ("ws", "comment"):
            out.append((m.lastgroup, m.group()))
        pos = m.end()
    return out


class Uses:
    """What one expression (or several, merged) uses."""

    def __init__(self):
        self.metrics = set()
        self.functions = set()
        self.grouping = set()   # labels in by/without/on/ignoring/group_left/group_right
        self.matchers = []      # (metric or None, label, op, value)
        self.made_labels = set()  # strings in label_replace/label_join: labels they may make

    def merge(self, other):
        self.metrics |= other.metrics
        self.functions |= other.functions
        self.grouping |= other.grouping
        self.matchers += other.matchers
        self.made_labels |= other.made_labels
        return self


def _unquote(text):
    return text[1:-1] if text[:1] in "\"'`" else text


def analyse(expr):
    """The metrics, functions, grouping labels and label matchers of expr."""
    toks = tokens(expr)
    u = Uses()

    def at(i):
        return toks[i] if i < len(toks) else (None, None)

    def selector(i, metric):
        """toks[i] is "{": reads the matchers, returns the index after "}"."""
        start = len(u.matchers)
        i += 1
        while at(i) != ("op", "}"):
            if at(i) == ("op", ","):
                i += 1
                continue
            (lk, label), (ok, op), (vk, value) = at(i), at(i + 1), at(i + 2)
            if lk != "ident" or ok != "op" or op not in ("=", "!=", "=~", "!~") \
                    or vk not in ("str", "var"):
                raise ValueError("PromQL %r: bad label matcher at %r" % (expr, label))
            value = _unquote(value)
            if label == "__name__" and op == "=":
                metric = value
                u.metrics.add(value)
            u.matchers.append([metric, label, op, value])
            i += 3
        for m in u.matchers[start:]:
            m[0] = metric
        return i + 1

    i = 0
    while i < len(toks):
        kind, text = toks[i]
        low = text.lower()
        if kind == "ident" and low in GROUPING:
            i += 1
            if at(i) == ("op", "("):
                i += 1
                while at(i) != ("op", ")"):
                    if at(i)[0] == "ident":
                        u.grouping.add(at(i)[1])
                    elif at(i) != ("op", ","):
                        raise ValueError("PromQL %r: bad label list after %s" % (expr, text))
                    i += 1
                i += 1
            continue
        if kind == "ident" and (low in KEYWORDS or low in NUMBER_WORDS):
            i += 1
            continue
        if kind == "ident" and low in AGGREGATIONS and at(i + 1)[0] == "ident" \
                and at(i + 1)[1].lower() in ("by", "without"):
            u.functions.add(low)  # sum by (route) (...)
            i += 1
            continue
        if kind == "ident" and at(i + 1) == ("op", "("):
            if text not in FUNCTIONS and low not in AGGREGATIONS:
                raise ValueError("PromQL %r: unknown function %s" % (expr, text))
            u.functions.add(low if low in AGGREGATIONS else text)
            i += 1
            continue
        if kind == "ident":
            u.metrics.add(text)
            i += 1
            if at(i) == ("op", "{"):
                i = selector(i, text)
            continue
        if (kind, text) == ("op", "{"):
            i = selector(i, None)
            continue
        if kind == "str" and u.functions & {"label_replace", "label_join"}:
            u.made_labels.add(_unquote(text))
        i += 1
    u.matchers = [tuple(m) for m in u.matchers]
    return u


def analyse_variable_query(query):
    """A Grafana variable query: label_values(SELECTOR, LABEL), or PromQL."""
    m = re.fullmatch(r"\s*label_values\((.*?)(?:,\s*([a-zA-Z_]\w*))?\)\s*", query, re.S)
    if not m:
        return analyse(query)
    if m.group(2) is None:  # label_values(label)
        return Uses()
    u = analyse(m.group(1))
    u.grouping.add(m.group(2))
    return u


def test_promql_reader_finds_what_an_expression_uses():
    """The reader the checks below rely on (a reader that found nothing
    would let every check pass)."""
    u = analyse('sum by (route, le) (rate(foo_bucket{job=~"$job", route!~"/a|/b"}'
                '[$__rate_interval] offset 5m)) / on(instance) group_left(process) '
                'bar_total * 1e-3 > bool 0.5 + Inf + count without (x) ({__name__="baz"})'
                ' - histogram_quantile(0.99, qux_seconds_bucket[5m:1m]) # no_metric here')
    assert u.metrics == {"foo_bucket", "bar_total", "baz", "qux_seconds_bucket"}
    assert u.functions == {"sum", "rate", "count", "histogram_quantile"}
    assert u.grouping == {"route", "le", "instance", "process", "x"}
    assert ("foo_bucket", "job", "=~", "$job") in u.matchers
    assert ("foo_bucket", "route", "!~", "/a|/b") in u.matchers
    assert ("baz", "__name__", "=", "baz") in u.matchers
    with pytest.raises(ValueError, match="unknown function sumx"):
        analyse("sumx(rate(a[5m]))")
    v = analyse_variable_query('label_values(foo_total{job=~"$job"}, instance)')
    assert v.metrics == {"foo_total"} and v.grouping == {"instance"}


# --------------------------------------------------------------------------
# the dashboard
# --------------------------------------------------------------------------

def load_dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def all_panels(panels):
    for p in panels:
        yield p
        yield from all_panels(p.get("panels", []))


def dashboard_queries(dash):
    """(where, expr, is_panel) for every PromQL query of the dashboard."""
    out = []
    for p in all_panels(dash.get("panels", [])):
        for t in p.get("targets", []):
            if "expr" in t:
                out.append(("panel %r" % p.get("title"), t["expr"], p))
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            out.append(("variable %r" % v.get("name"), q, None))
    return out


def dashboard_uses(dash):
    """(uses of all queries merged, {metric: [where used]}, [(where, Uses)])"""
    total, where, each = Uses(), {}, []
    for place, expr, _ in dashboard_queries(dash):
        u = analyse_variable_query(expr) if place.startswith("variable") else analyse(expr)
        total.merge(u)
        each.append((place, u))
        for m in u.metrics:
            where.setdefault(m, []).append(place)
    return total, where, each


def test_dashboard_is_importable_and_every_panel_has_the_datasource():
    dash = load_dashboard()  # valid JSON, or this raises
    assert dash.get("title") and dash.get("uid")
    assert dash.get("schemaVersion", 0) >= 36, dash.get("schemaVersion")
    assert dash.get("id") is None, "an exported dashboard carries no database id"
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    ds = variables.get("datasource")
    assert ds and ds["type"] == "datasource" and ds["query"] == "prometheus", ds
    for name in ("job", "instance"):
        v = variables.get(name)
        assert v and v["type"] == "query" and v.get("datasource") == DATASOURCE, (name, v)
    panels = list(all_panels(dash["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids repeat: %s" % ids
    shown = [p for p in panels if p.get("type") != "row"]
    assert len(shown) >= 9
    for p in shown:
        assert p.get("title") and p.get("gridPos"), p
        assert p.get("datasource") == DATASOURCE, \
            "panel %r: datasource %r, not the variable" % (p.get("title"), p.get("datasource"))
        assert p.get("targets"), "panel %r has no query" % p["title"]
        for t in p["targets"]:
            assert t.get("expr"), (p["title"], t)
            assert t.get("datasource", DATASOURCE) == DATASOURCE, (p["title"], t)
            assert t.get("refId"), (p["title"], t)


def test_every_panel_query_follows_the_job_and_instance_variables():
    for place, expr, panel in dashboard_queries(load_dashboard()):
        if panel is None:
            continue
        u = analyse(expr)
        assert u.metrics, "%s: %r uses no metric" % (place, expr)
        for metric in u.metrics:
            got = {(label, value) for m, label, _, value in u.matchers if m == metric}
            assert {("job", "$job"), ("instance", "$instance")} <= got, \
                "%s: %s without job=~\"$job\", instance=~\"$instance\" in %r" % (
                    place, metric, expr)


# What the issue asks the dashboard to show, each as a test on one panel's
# queries: (what, predicate on the panel's merged Uses).
REQUIRED = [
    ("request rate per route",
     lambda u: "sessiond_requests_total" in u.metrics and "route" in u.grouping
     and "rate" in u.functions),
    ("request rate per status class",
     lambda u: "sessiond_requests_total" in u.metrics and "rate" in u.functions
     and any(label == "status" and op == "=~" for _, label, op, _ in u.matchers)),
    ("latency per route (quantiles of the histogram)",
     lambda u: "sessiond_request_duration_seconds_bucket" in u.metrics
     and "histogram_quantile" in u.functions and {"route", "le"} <= u.grouping),
    ("sessions created",
     lambda u: "sessiond_sessions_created_total" in u.metrics),
    ("sessions closed by reason",
     lambda u: "sessiond_sessions_closed_total" in u.metrics and "reason" in u.grouping),
    ("live sessions",
     lambda u: "sessiond_sessions_live" in u.metrics),
    ("store latency per operation",
     lambda u: "sessiond_store_duration_seconds_bucket" in u.metrics
     and "histogram_quantile" in u.functions and {"op", "le"} <= u.grouping),
    ("store errors",
     lambda u: "sessiond_store_errors_total" in u.metrics),
    ("503s by route",
     lambda u: "sessiond_requests_total" in u.metrics and "route" in u.grouping
     and any(label == "status" and "503" in value and not op.startswith("!")
             for _, label, op, value in u.matchers)),
]


def test_dashboard_has_the_panels_operators_need():
    dash = load_dashboard()
    per_panel = []
    for p in all_panels(dash["panels"]):
        if p.get("type") == "row":
            continue
        u = Uses()
        for t in p.get("targets", []):
            u.merge(analyse(t["expr"]))
        per_panel.append((p["title"], u))
    missing = [what for what, ok in REQUIRED if not any(ok(u) for _, u in per_panel)]
    assert not missing, "no panel shows: %s" % ", ".join(missing)
    for title, u in per_panel:
        only = [m for m in u.metrics if m in STORE_ONLY]
        for m in only:
            panel = next(p for p in all_panels(dash["panels"]) if p.get("title") == title)
            kinds = STORE_ONLY[m]
            assert all(k.upper() in (title + panel.get("description", "")).upper()
                       for k in kinds), \
                "panel %r uses %s, exported on %s only, and does not say so" % (
                    title, m, "/".join(sorted(kinds)))


# --------------------------------------------------------------------------
# ... against a running process
# --------------------------------------------------------------------------

def exported_labels(metrics):
    """{sample name: set of label names} of a scraped /metrics."""
    out = {}
    for name, labels, _ in metrics.samples:
        out.setdefault(name, set()).update(labels)
    return out


def target_labels():
    """Labels Prometheus attaches to every series of a target, as
    deploy/prometheus.yml configures them."""
    labels = {"job", "instance"}
    for sc in load_prometheus()["scrape_configs"]:
        for rc in sc.get("relabel_configs", []):
            if rc.get("target_label"):
                labels.add(rc["target_label"])
        for st in sc.get("static_configs", []):
            labels.update(st.get("labels", {}))
    return labels


def drive_traffic(create, read, close):
    """Create, read, list, validate, a close, a close-all, a 401 and a 404,
    so every labelled series the dashboard graphs exists."""
    user = uid("dash")
    tok = make_token(user)
    made = [create.create(tok) for _ in range(3)]
    assert read.get("/session/%s" % made[0]["id"], token=tok).status_code == 200
    assert read.get("/users/%s/sessions" % user, token=tok).status_code == 200
    assert read.get("/validate", token=made[0]["token"]).status_code == 200
    assert close.delete("/session/%s" % made[1]["id"], token=tok).status_code == 204
    r = close.delete("/users/%s/sessions?except=%s" % (user, made[0]["id"]), token=tok)
    assert r.status_code == 200 and r.json() == {"closed": 1}, r.text
    assert read.get("/session/%s" % made[0]["id"]).status_code == 401
    assert read.get("/session/%s" % made[1]["id"], token=tok).status_code == 404


def scrape_after(servers):
    """Every process's /metrics, once the closes are counted (counters may
    be bumped just after the answer went out)."""
    def closed_counted():
        return sum(s.metrics().value("sessiond_sessions_closed_total") for s in servers) >= 2
    assert wait_until(closed_counted, timeout=2.0)
    return [s.metrics() for s in servers]


def check_exported(scraped, store_kind):
    dash = load_dashboard()
    total, where, each = dashboard_uses(dash)
    assert len(total.metrics) >= 8, total.metrics
    labels = {}
    for m in scraped:
        for name, ls in exported_labels(m).items():
            labels.setdefault(name, set()).update(ls)
    absent = {m for m in total.metrics - SYNTHETIC if m not in labels}
    expected_absent = {m for m, kinds in STORE_ONLY.items()
                       if store_kind not in kinds and m in total.metrics}
    unexpected = absent - expected_absent
    assert not unexpected, "the dashboard uses metrics /metrics does not export on [%s]: %s" % (
        store_kind, "; ".join("%s (%s)" % (m, ", ".join(where[m])) for m in sorted(unexpected)))
    now_there = expected_absent - absent
    assert not now_there, "exported on [%s] after all, update STORE_ONLY and the docs: %s" % (
        store_kind, sorted(now_there))
    # every label a query names exists on the metrics it uses
    extra = target_labels()
    for place, u in each:
        for metric, label, _, _ in u.matchers:
            if metric in labels and metric not in SYNTHETIC:
                assert label in labels[metric] | extra, \
                    "%s: %s has no label %r on [%s] (it has %s)" % (
                        place, metric, label, store_kind, sorted(labels[metric]))
        have = set().union(*(labels.get(m, set()) for m in u.metrics)) | extra | u.made_labels
        unknown = u.grouping - have
        if u.metrics & set(labels):
            assert not unknown, "%s groups by labels its metrics lack on [%s]: %s" % (
                place, store_kind, sorted(unknown))


def test_every_metric_the_dashboard_uses_is_exported(server, store_kind):
    drive_traffic(server, server, server)
    check_exported(scrape_after([server]), store_kind)


def test_the_split_processes_export_what_the_dashboard_uses(mspawn, tmp_path_factory,
                                                            store_kind):
    """The Compose stack's layout: createSession, readSession, closeSession
    on one store, each scraped on its own."""
    store = tmp_path_factory.mktemp("dash-store")
    c, r, d = (mspawn(name, store=store) for name in ("createSession", "readSession",
                                                      "closeSession"))
    drive_traffic(c, r, d)
    check_exported(scrape_after([c, r, d]), store_kind)


# --------------------------------------------------------------------------
# deploy/prometheus.yml against docker-compose.yml and deploy/sessiond.service
# --------------------------------------------------------------------------

def load_prometheus():
    with open(PROMETHEUS) as f:
        return yaml.safe_load(f)


def scraped_targets(scrape_configs):
    """{(host, port, path)} of the static and DNS-discovered targets."""
    out = set()
    for sc in scrape_configs:
        path = sc.get("metrics_path", "/metrics")
        assert sc.get("scheme", "http") == "http", sc
        for st in sc.get("static_configs", []):
            for t in st["targets"]:
                host, port = t.rsplit(":", 1)
                out.add((host, int(port), path))
        for dc in sc.get("dns_sd_configs", []):
            assert dc.get("type") in ("A", "AAAA"), "SRV needs no port; this stack has no SRV"
            for name in dc["names"]:
                out.add((name, int(dc["port"]), path))
    return out


def compose_servers():
    """{service: port} of the Compose services that run a service process."""
    with open(COMPOSE) as f:
        compose = yaml.safe_load(f)
    out = {}
    for name, svc in compose["services"].items():
        cmd = svc.get("command") or []
        argv = cmd.split() if isinstance(cmd, str) else cmd
        if not argv or argv[0].rsplit("/", 1)[-1] not in BINARIES:
            continue
        env = svc.get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) for e in env)
        assert str(env.get("HOST")) in ("0.0.0.0", "::"), \
            "%s listens on %s: Prometheus on the Compose network cannot reach it" % (
                name, env.get("HOST"))
        out[name] = int(env.get("PORT", 8080))
    return out


def test_prometheus_scrapes_every_compose_process():
    servers = compose_servers()
    assert {"createsession", "readsession", "closesession"} <= set(servers), servers
    conf = load_prometheus()
    targets = scraped_targets(conf["scrape_configs"])
    for name, port in servers.items():
        assert (name, port, "/metrics") in targets, \
            "deploy/prometheus.yml does not scrape %s:%d/metrics (it scrapes %s)" % (
                name, port, sorted(targets))
    stray = {t for t in targets if t[0] not in servers}
    assert not stray, "scraped, but not a service process of docker-compose.yml: %s" % stray
    assert {sc["job_name"] for sc in conf["scrape_configs"]} == {"sessionservice"}


def test_prometheus_systemd_block_scrapes_the_unit():
    """The commented job for deploy/sessiond.service: uncommented, it is a
    valid scrape config for the unit's HOST and PORT, with the same job."""
    text = PROMETHEUS.read_text()
    m = re.search(r"^[ \t]*# BEGIN systemd[^\n]*\n(.*?)^[ \t]*# END systemd", text, re.S | re.M)
    assert m, "deploy/prometheus.yml has no '# BEGIN systemd' ... '# END systemd' block"
    lines = [re.sub(r"^(\s*)# ?", r"\1", line) for line in m.group(1).splitlines()
             if line.strip().startswith("#")]
    block = yaml.safe_load("\n".join(lines))
    assert isinstance(block, list) and block, block
    unit = dict(re.findall(r"^Environment=(\w+)=(\S*)$", UNIT.read_text(), re.M))
    targets = scraped_targets(block)
    assert (unit["HOST"], int(unit["PORT"]), "/metrics") in targets, (unit, targets)
    assert {sc["job_name"] for sc in block} == {"sessionservice"}
