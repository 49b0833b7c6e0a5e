"""The session check inside nginx (ngx_http_sessiond_module): gateways
rendered from the same deploy/nginx.conf in front of the same three split
processes, one with auth_request only, one with the module
(render-nginx.sh --module), and one with the module given a store it cannot
open. Every scenario runs on each of them and must get identical answers:
status, WWW-Authenticate, the body, and what the application saw.

On LMDB the module must also answer what it owns without asking
readSession (its /validate counter stays still: a live session's current
token, every refusal) and ask it for what it does not (a use to record, an
earlier token of a refreshed session, a store it cannot open). On Redis it
asks for every session token, and the answers are the same.

The module that cannot open the store is, when these tests run as root
on LMDB, one whose workers run as `nobody` (the services' files are 0600),
else one given a store directory that does not exist.

The module is build/ngx_http_sessiond_module.so (`make nginx-module`, which
`make test` runs; SESSIOND_NGINX_MODULE names another). A missing module
fails these tests; it never skips them.
"""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from apitools import REPO, SECRET, admin_token, make_token, q, uid, wait_until
# trio (the three split processes on one store) and app (the application
# behind /app/) are test_gateway's fixtures, one of each for this module
from test_gateway import Nginx, app, counters, nginx_binary, render, trio  # noqa: F401

SPLIT = ("createSession", "readSession", "closeSession")
VALIDATE = ("/validate", "GET")
MODES = ("auth_request", "module", "module_blind")


def module_path():
    path = Path(os.environ.get("SESSIOND_NGINX_MODULE",
                               REPO / "build" / "ngx_http_sessiond_module.so"))
    if not path.is_file():
        pytest.fail("%s is missing: build it with `make nginx-module` (after "
                    "scripts/deps.sh test)" % path, pytrace=False)
    return path


def settings_file(path, store_url, **more):
    """The services' settings, as a .env file for sessiond_config."""
    lines = ["JWT_SECRET=%s" % SECRET, "STORE_URL=%s" % store_url]
    lines += ["%s=%s" % kv for kv in more.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


# nginx runs as root here (CI), and its workers would then be `nobody`, who
# may not open the services' LMDB files (0600): the workers of the module's
# gateways run as the services' user, as docs/DEPLOY.md asks.
AS_SERVICES = " user root;" if os.geteuid() == 0 else ""


@pytest.fixture(scope="module")
def gws(trio, app, tmp_path_factory):
    nginx_binary()
    so = module_path()
    conf = tmp_path_factory.mktemp("gwm-conf")
    url = trio["readSession"].store_url
    good = settings_file(conf / "sessiond.env", url)
    if AS_SERVICES and lmdb(trio):
        # the services' store, but workers that may not open it (nobody)
        blind, blind_as = good, ""
    else:
        # a store that is not there
        blind = settings_file(conf / "blind.env", "lmdb://%s" % (conf / "no-such-store"))
        blind_as = AS_SERVICES
    ports = dict(create="127.0.0.1:%d" % trio["createSession"].port,
                 read="127.0.0.1:%d" % trio["readSession"].port,
                 close="127.0.0.1:%d" % trio["closeSession"].port,
                 app="127.0.0.1:%d" % app.port)
    made = {}
    try:
        made["auth_request"] = Nginx(tmp_path_factory.mktemp("gwm-ar"), **ports).start()
        made["module"] = Nginx(tmp_path_factory.mktemp("gwm-mod"), module=so,
                               module_config=good, directives=AS_SERVICES, **ports).start()
        made["module_blind"] = Nginx(tmp_path_factory.mktemp("gwm-blind"), module=so,
                                     module_config=blind, directives=blind_as,
                                     **ports).start()
        yield made
    finally:
        # every gateway stopped, then the problems of all of them
        problems = [p for gw in made.values() for p in gw.stop()]
        if problems:
            pytest.fail("gateway problems:\n" + "\n".join(problems[:30]), pytrace=False)


def lmdb(trio):
    return trio["readSession"].store_url.startswith("lmdb:")


def validations(trio):
    return sum(v for (route, method, _), v in counters(trio)["readSession"].items()
               if (route, method) == VALIDATE)


def answer(r, who=None):
    """What a client sees of an answer, for comparing two gateways; the
    identity the application saw is checked against who (user, sid) and
    written as <user>, <sid>, as each gateway's run has sessions of its own."""
    try:
        body = r.json()
    except ValueError:
        body = r.text
    if r.status_code == 200 and isinstance(body, dict) and "x_user_id" in body:
        assert who is not None and body["x_user_id"] == [who[0]], (body, who)
        assert body["x_session_id"] == [who[1]], (body, who)
        body = dict(body, x_user_id=["<user>"], x_session_id=["<sid>"])
    return (r.status_code, r.headers.get("WWW-Authenticate"), r.headers.get("Content-Type"),
            r.headers.get("Cache-Control"), body)


class Run:
    """One gateway's run of a scenario: its answers, and how many times
    readSession's /validate was asked for each."""

    def __init__(self, mode, gw, trio):
        self.mode, self.gw, self.trio = mode, gw, trio
        self.answers = []
        self.asked = []

    def app(self, who=None, path="/app/page", **kw):
        before = validations(self.trio)
        r = self.gw.get(path, **kw)
        self.asked.append(settled(self.trio) - before)
        self.answers.append(answer(r, who))
        return r


def settled(trio):
    """readSession's /validate count once it has stopped moving (it counts
    a request as it finishes answering it, maybe just after the gateway
    answered the client): the same for 0.2 s, within 5 s."""
    last, same_since = validations(trio), time.monotonic()
    deadline = same_since + 5
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = validations(trio)
        if now != last:
            last, same_since = now, time.monotonic()
        elif time.monotonic() - same_since >= 0.2:
            break
    return last


def second_start():
    """Waits for the start of a second: sessions made right after it have
    their whole first second ahead of them (times are whole seconds)."""
    time.sleep(1 - time.time() % 1 + 0.02)


def check_runs(runs, trio, module_lmdb, module_asks):
    """Identical answers everywhere; auth_request asked once per request;
    the module asked as module_lmdb says on LMDB, and as module_asks says
    (for every session token that verifies) on Redis and when blind."""
    want = runs["auth_request"].answers
    for mode in MODES[1:]:
        assert runs[mode].answers == want, (
            "%s answered differently from auth_request:\n%r\n%r"
            % (mode, runs[mode].answers, want))
    assert all(n == 1 for n in runs["auth_request"].asked), runs["auth_request"].asked
    assert runs["module_blind"].asked == module_asks, runs["module_blind"].asked
    expect = module_lmdb if lmdb(trio) else module_asks
    assert runs["module"].asked == expect, (runs["module"].asked, expect)


def run_all(gws, trio, scenario, module_lmdb, module_asks):
    """scenario(run) on every gateway, then check_runs."""
    runs = {mode: Run(mode, gws[mode], trio) for mode in MODES}
    for mode in MODES:
        scenario(runs[mode])
    check_runs(runs, trio, module_lmdb, module_asks)
    return runs


def test_live_sessions_and_refusals(gws, trio):
    def scenario(run):
        user = uid()
        s = run.gw.create(make_token(user))
        who = (user, s["id"])
        for how in ({"Authorization": "Bearer %s" % s["token"]},
                    {"Cookie": "theme=dark; session=%s" % s["token"]},
                    {"Authorization": "Basic eDp5", "Cookie": "session=%s" % s["token"]},
                    # the client's own identity headers never pass for a session
                    {"Authorization": "Bearer %s" % s["token"], "X-User-Id": "eve",
                     "X-Session-Id": "E" * 22}):
            assert run.app(who, headers=how).status_code == 200
        # refused: nothing, a caller token, a forged one, garbage, another
        # scheme, a bad cookie, the token in another cookie
        for how in ({}, {"Authorization": "Bearer %s" % make_token(user)},
                    {"Authorization": "Bearer %s" % make_token(user, secret="x" * 48)},
                    {"Authorization": "Bearer a.b.c"}, {"Authorization": "Basic eDp5"},
                    {"Cookie": "session=a.b.c"}, {"Cookie": "other=%s" % s["token"]}):
            assert run.app(headers=how).status_code == 401

    # the module refuses what it can judge alone (no token, a forged token
    # as the signer writes them); a token not as the service signs them
    # (a caller token, garbage) is the service's to judge
    refusals = [0, 1, 0, 1, 0, 1, 0]
    run_all(gws, trio, scenario, module_lmdb=[0] * 4 + refusals,
            module_asks=[1] * 4 + refusals)


def test_a_close_is_seen_by_the_next_request(gws, trio):
    def scenario(run):
        user = uid()
        tok = make_token(user)
        s, other = run.gw.create(tok), run.gw.create(tok)
        run.app((user, s["id"]), token=s["token"])
        assert run.gw.delete("/session/%s" % s["id"], token=tok).status_code == 204
        run.app(token=s["token"])
        run.app(headers={"Cookie": "session=%s" % s["token"]})
        run.app((user, other["id"]), token=other["token"])
        assert run.gw.delete("/users/%s/sessions" % q(user), token=tok).status_code == 200
        run.app(token=other["token"])

    runs = run_all(gws, trio, scenario, module_lmdb=[0] * 5, module_asks=[1] * 5)
    assert [a[0] for a in runs["auth_request"].answers] == [200, 401, 401, 200, 401]


def test_expiry(gws, trio):
    runs = {mode: Run(mode, gws[mode], trio) for mode in MODES}
    second_start()
    made = {mode: gws[mode].create(make_token(uid()), {"ttl": 2}) for mode in MODES}
    for mode in MODES:
        runs[mode].app((made[mode]["user_id"], made[mode]["id"]), token=made[mode]["token"])
    latest = max(m["expires_at"] for m in made.values())
    while time.time() < latest + 0.2:
        time.sleep(0.1)
    for mode in MODES:
        runs[mode].app(token=made[mode]["token"])
    # the token lives on for JWT_LEEWAY: the module that reads the store
    # refuses the ended session itself, the others ask
    check_runs(runs, trio, module_lmdb=[0, 0], module_asks=[1, 1])
    assert [a[0] for a in runs["auth_request"].answers] == [200, 401]


def test_an_idle_session_has_its_uses_recorded_by_the_service(gws, trio):
    """idle_timeout 2 (slack 2): the module answers a use inside the slack
    itself, asks the service about one the slack old (which records it), and
    the session then lives on from that use; unused, it ends."""
    runs = {mode: Run(mode, gws[mode], trio) for mode in MODES}
    second_start()
    made = {mode: gws[mode].create(make_token(uid()), {"idle_timeout": 2}) for mode in MODES}

    def use(mode):
        return runs[mode].app((made[mode]["user_id"], made[mode]["id"]),
                              token=made[mode]["token"])

    def last_seen(mode):
        got = gws[mode].get("/session/%s" % made[mode]["id"], token=admin_token())
        assert got.status_code == 200
        return got.json()["last_seen_at"]

    def until(t):
        while time.time() < t:
            time.sleep(0.05)

    for mode in MODES:
        use(mode)
    created = max(m["created_at"] for m in made.values())
    until(created + 2.1)  # the last recorded use is the slack old
    for mode in MODES:
        use(mode)
        assert last_seen(mode) >= made[mode]["created_at"] + 2, mode
    until(created + 4.2)  # past the idle end the creation alone gave
    for mode in MODES:
        use(mode)
    until(max(last_seen(mode) for mode in MODES) + 4.2)  # unused past its idle end
    for mode in MODES:
        use(mode)
    want = runs["auth_request"].answers
    assert [a[0] for a in want] == [200, 200, 200, 401]
    for mode in MODES:
        assert runs[mode].answers == want, mode
    assert runs["module_blind"].asked == [1, 1, 1, 1]
    if lmdb(trio):
        # the third use is asked about unless the second was recorded a
        # second late (a slow machine), when it is inside the slack again
        assert runs["module"].asked[:2] == [0, 1] and runs["module"].asked[3] == 0, \
            runs["module"].asked


def test_a_refreshed_sessions_earlier_tokens_are_judged_by_the_service(gws, trio):
    def scenario(run):
        user = uid()
        s = run.gw.create(make_token(user))
        who = (user, s["id"])
        t0 = s["token"]
        r1 = run.gw.post("/session/%s/refresh" % s["id"], token=t0)
        assert r1.status_code == 200, r1.text
        t1 = r1.json()["token"]
        r2 = run.gw.post("/session/%s/refresh" % s["id"], token=t1)
        assert r2.status_code == 200, r2.text
        t2 = r2.json()["token"]
        run.app(who, token=t2)  # current: live
        run.app(who, token=t1)  # the previous one, inside its grace: live
        run.app(token=t0)       # older: reuse, the session is closed as stolen
        run.app(token=t2)       # and so is its current token

    runs = run_all(gws, trio, scenario, module_lmdb=[0, 1, 1, 0], module_asks=[1, 1, 1, 1])
    assert [a[0] for a in runs["auth_request"].answers] == [200, 200, 401, 401]


def test_the_blind_module_says_why_it_asks(gws, trio):
    gw = gws["module_blind"]
    s = gw.create(make_token(uid()))
    assert gw.get("/app/", token=s["token"]).status_code == 200
    assert wait_until(lambda: "cannot open the LMDB store" in gw.log_text(), timeout=3), \
        gw.log_text()[-2000:]


def workers(gw):
    """The pids of the nginx master's children."""
    out = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == gw.proc.pid:
                out.add(int(d.name))
    return out


def test_survives_a_reload(gws, trio):
    gw = gws["module"]
    run = Run("module", gw, trio)
    user = uid()
    s = gw.create(make_token(user))
    run.app((user, s["id"]), token=s["token"])
    old = workers(gw)
    assert old, "no nginx workers found"
    gw.proc.send_signal(signal.SIGHUP)
    # new workers, which open the store at their first check; the old ones gone
    assert wait_until(lambda: workers(gw) and not workers(gw) & old, timeout=10), \
        (old, workers(gw), gw.log_text()[-2000:])
    for _ in range(5):
        run.app((user, s["id"]), token=s["token"])
    run.app(token=make_token(user, secret="x" * 48))  # forged: refused inside nginx
    assert [a[0] for a in run.answers] == [200] * 6 + [401]
    if lmdb(trio):
        assert not any(run.asked), run.asked


def test_survives_the_services_restart(gws, trio):
    """kill -9 of the three services, then a start: the module's workers
    keep their view of the store. While the services are down, the module
    still answers what it owns from the store on LMDB (it never needed
    them for that); what it would ask, and auth_request, get 503."""
    gw, ar = gws["module"], gws["auth_request"]
    user = uid()
    s = gw.create(make_token(user))
    tok = s["token"]
    assert gw.get("/app/", token=tok).status_code == 200
    # what nginx logs of the services' absence, from here on
    for g in (gw, ar):
        g.allowed_errors += ("connect() failed (111: Connection refused) while connecting "
                             "to upstream", "auth request unexpected status: 503")
    for name in SPLIT:
        trio[name].kill()
    down = gw.get("/app/", token=tok)
    assert down.status_code == (200 if lmdb(trio) else 503), down.text
    assert ar.get("/app/", token=tok).status_code == 503
    # a forged token is refused inside nginx, services or not
    assert gw.get("/app/", token=make_token(user, secret="x" * 48)).status_code == 401
    for name in SPLIT:
        trio[name].start()
    r = gw.get("/app/", token=tok)
    assert r.status_code == 200 and r.json()["x_session_id"] == [s["id"]]
    # and a close made by the restarted services is seen at once
    assert gw.delete("/session/%s" % s["id"], token=make_token(user)).status_code == 204
    assert gw.get("/app/", token=tok).status_code == 401


# --------------------------------------------------------------------------
# configuration: refused at `nginx -t`, with the variable named
# --------------------------------------------------------------------------

def nginx_t(tmp_path, conf_text):
    conf = tmp_path / "nginx.conf"
    conf.write_text(conf_text)
    return subprocess.run([nginx_binary(), "-t", "-p", str(tmp_path) + "/", "-c", str(conf),
                           "-e", str(tmp_path / "error.log")],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)


def rendered(tmp_path, settings):
    return render(module=module_path(), module_config=settings,
                  error_log=tmp_path / "error.log", access_log=tmp_path / "access.log")


@pytest.mark.parametrize("line,named", [
    ("JWT_SECRET=short", "JWT_SECRET"),
    ("SESSION_COOKIE=a b", "SESSION_COOKIE"),
    ("SESSION_REFRESH_GRACE=301", "SESSION_REFRESH_GRACE"),
    ("STORE_URL=ftp://x", "STORE_URL"),
    ("not a line", "line 3"),
])
def test_invalid_settings_fail_nginx_t(tmp_path, line, named):
    settings = settings_file(tmp_path / "bad.env", "lmdb:///tmp/x")
    settings.write_text(settings.read_text() + line + "\n")
    out = nginx_t(tmp_path, rendered(tmp_path, settings))
    text = out.stdout.decode()
    assert out.returncode != 0, text
    assert "sessiond_config" in text and named in text, text
    assert SECRET not in text


def test_missing_settings_and_incomplete_locations_fail_nginx_t(tmp_path):
    out = nginx_t(tmp_path, rendered(tmp_path, tmp_path / "absent.env"))
    assert out.returncode != 0 and "absent.env" in out.stdout.decode()
    good = settings_file(tmp_path / "good.env", "lmdb:///tmp/x")
    text = rendered(tmp_path, good)
    assert nginx_t(tmp_path, text).returncode == 0
    for drop, says in (("sessiond_config %s;" % good, "sessiond_config"),
                       ("sessiond_auth_fallback /_sessiond_validate;", "sessiond_auth_fallback")):
        out = nginx_t(tmp_path, text.replace(drop, ""))
        assert out.returncode != 0 and says in out.stdout.decode(), out.stdout.decode()
