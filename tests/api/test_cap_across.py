"""Sessions per user (contract v2, "Sessions per user") across processes:
dozens of creates at once through two processes sharing one store never
leave a user above SESSION_MAX_PER_USER, under either policy."""

import threading

import pytest

from apitools import admin_token, make_token, q, uid

CAP = 5


def pair(spawn, tmp_path, policy):
    store = tmp_path / "shared"
    env = {"SESSION_MAX_PER_USER": str(CAP), "SESSION_LIMIT_POLICY": policy}
    return [spawn("sessiond", env=env, store=store) for _ in range(2)]


def creates_at_once(procs, user, threads=8, each=6):
    """threads x each creates for user, alternating processes and caller
    (the user's own token, an administrator's for the user); returns every
    answer as (status, body)."""
    tok, adm = make_token(user), admin_token()
    answers, lock = [], threading.Lock()

    def go(k):
        for i in range(each):
            srv = procs[(k + i) % 2]
            if (k + i) % 3 == 0:
                r = srv.post("/session", token=adm, json={"user_id": user})
            else:
                r = srv.post("/session", token=tok)
            with lock:
                answers.append((r.status_code, r.json()))

    ts = [threading.Thread(target=go, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    return answers


def listed(srv, user):
    r = srv.get("/users/%s/sessions" % q(user), token=make_token(user))
    assert r.status_code == 200, r.text
    return {s["id"] for s in r.json()["sessions"]}


@pytest.mark.concurrency
def test_refuse_lets_exactly_the_cap_in_across_processes(spawn, tmp_path):
    procs = pair(spawn, tmp_path, "refuse")
    user = uid("refuse")
    answers = creates_at_once(procs, user)
    made = [b["id"] for s, b in answers if s == 201]
    refused = [b for s, b in answers if s == 409]
    assert len(made) == CAP, sorted(s for s, _ in answers)
    assert len(refused) == len(answers) - CAP
    assert all(b["status"] == 409 for b in refused)
    assert listed(procs[0], user) == listed(procs[1], user) == set(made)


@pytest.mark.concurrency
def test_evict_oldest_never_passes_the_cap_across_processes(spawn, tmp_path):
    procs = pair(spawn, tmp_path, "evict_oldest")
    user = uid("evict")
    answers = creates_at_once(procs, user)
    assert {s for s, _ in answers} == {201}
    made = {b["id"] for _, b in answers}
    evicted = [e for _, b in answers for e in b["evicted"]]
    assert len(evicted) == len(set(evicted)), "a session evicted twice"
    assert set(evicted) <= made
    live = listed(procs[0], user)
    assert live == listed(procs[1], user)
    assert len(live) == CAP
    # every session is either still live or was reported evicted, never both
    assert live | set(evicted) == made and not live & set(evicted)
