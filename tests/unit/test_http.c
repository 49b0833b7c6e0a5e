/* test_http.c -- the pure parsers of the HTTP edge: percent-decoding
 * (str_pct_decode, buf.h; formerly http_pct_decode), route matching, the
 * Bearer scheme and the Cookie header (cred.h). */
#include <string.h>
#include "buf.h"
#include "cred.h"
#include "http.h"
#include "unit.h"

/* ---- str_pct_decode ---- */

static int pct(const char *in, const char *want, size_t wantlen)
{
    char out[256];
    size_t n = 12345;
    memset(out, '#', sizeof out);
    if (str_pct_decode(in, strlen(in), out, &n) != RC_OK) {
        fprintf(stderr, "  pct(\"%s\") refused\n", in);
        return 0;
    }
    return n == wantlen && memcmp(out, want, n) == 0;
}

static int pct_bad(const char *in)
{
    char out[256];
    size_t n = 0;
    return str_pct_decode(in, strlen(in), out, &n) == RC_INVALID;
}

static void test_pct_decode(void)
{
    CHECK(pct("", "", 0));
    CHECK(pct("abc", "abc", 3));
    CHECK(pct("a%20b", "a b", 3));
    CHECK(pct("%2F", "/", 1));
    CHECK(pct("%2f", "/", 1));
    CHECK(pct("a%2Fb%2fc", "a/b/c", 5));
    CHECK(pct("%41%42%43", "ABC", 3));
    CHECK(pct("%41", "A", 1));
    CHECK(pct("x%41", "xA", 2));
    CHECK(pct("%c3%A9", "\xc3\xa9", 2));
    CHECK(pct("%25", "%", 1));
    CHECK(pct("%2525", "%25", 3));          /* decoded once only */
    CHECK(pct("a+b", "a+b", 3));            /* '+' is not special */
    CHECK(pct("%00", "\0", 1));
    CHECK(pct("%ff%FF", "\xff\xff", 2));

    CHECK(pct_bad("%"));
    CHECK(pct_bad("%4"));
    CHECK(pct_bad("%zz"));
    CHECK(pct_bad("%g0"));
    CHECK(pct_bad("%0g"));
    CHECK(pct_bad("a%"));
    CHECK(pct_bad("ab%4"));
    CHECK(pct_bad("%41%"));
    CHECK(pct_bad("%%41"));
    CHECK(pct_bad("% 41"));
    CHECK(pct_bad("%-1"));

    /* len is honoured: an escape cut by len is malformed */
    char out[8];
    size_t n = 0;
    CHECK_EQ_INT(str_pct_decode("%41", 2, out, &n), RC_INVALID);
    CHECK_EQ_INT(str_pct_decode("ab%41", 2, out, &n), RC_OK);
    CHECK_EQ_INT(n, 2);
}

/* ---- http_path_match ---- */

typedef struct match {
    int rc;
    size_t n;
    char p[2][128];
} match;

static match pm(const char *pattern, const char *path)
{
    match m;
    char space[HTTP_PARAM_SPACE];
    str_t params[HTTP_MAX_PARAMS];
    memset(&m, 0, sizeof m);
    memset(params, 0, sizeof params);
    m.rc = http_path_match(pattern, path, strlen(path), space, sizeof space, params,
                           HTTP_MAX_PARAMS);
    for (size_t i = 0; i < HTTP_MAX_PARAMS; i++) {
        if (params[i].p != NULL) {
            m.n = i + 1;
            memcpy(m.p[i], params[i].p, params[i].len < 127 ? params[i].len : 127);
            m.p[i][params[i].len < 127 ? params[i].len : 127] = '\0';
        }
    }
    return m;
}

static void test_path_match(void)
{
    match m;

    /* literals */
    CHECK_EQ_INT(pm("/session", "/session").rc, 1);
    CHECK_EQ_INT(pm("/session", "/sessions").rc, 0);
    CHECK_EQ_INT(pm("/session", "/sessio").rc, 0);
    CHECK_EQ_INT(pm("/session", "/Session").rc, 0);
    CHECK_EQ_INT(pm("/session", "/session/").rc, 0);     /* trailing slash */
    CHECK_EQ_INT(pm("/session", "/session/x").rc, 0);    /* extra segment */
    CHECK_EQ_INT(pm("/session", "//session").rc, 0);
    CHECK_EQ_INT(pm("/session", "session").rc, 0);
    CHECK_EQ_INT(pm("/session", "").rc, 0);
    CHECK_EQ_INT(pm("/session", "/").rc, 0);
    CHECK_EQ_INT(pm("/session", "/%73ession").rc, 0);    /* literals are not decoded */
    CHECK_EQ_INT(pm("/healthz", "/healthz").rc, 1);
    CHECK_EQ_INT(pm("/", "/").rc, 1);
    CHECK_EQ_INT(pm("/", "/x").rc, 0);

    /* one capture */
    m = pm("/session/{id}", "/session/abc_DEF-123");
    CHECK_EQ_INT(m.rc, 1);
    CHECK_EQ_INT(m.n, 1);
    CHECK_STR_EQ(m.p[0], "abc_DEF-123");
    CHECK_EQ_INT(pm("/session/{id}", "/session").rc, 0);
    CHECK_EQ_INT(pm("/session/{id}", "/session/").rc, 0);      /* empty capture */
    CHECK_EQ_INT(pm("/session/{id}", "/session/abc/").rc, 0);  /* trailing slash */
    CHECK_EQ_INT(pm("/session/{id}", "/session/a/b").rc, 0);   /* extra segment */
    CHECK_EQ_INT(pm("/session/{id}", "/session//").rc, 0);
    CHECK_EQ_INT(pm("/session/{id}", "/sessions/abc").rc, 0);
    m = pm("/session/{id}", "/session/a%2Fb");                /* %2F stays in the capture */
    CHECK_EQ_INT(m.rc, 1);
    CHECK_STR_EQ(m.p[0], "a/b");
    m = pm("/session/{id}", "/session/%20x%41");
    CHECK_EQ_INT(m.rc, 1);
    CHECK_STR_EQ(m.p[0], " xA");
    m = pm("/session/{id}", "/session/a+b");
    CHECK_EQ_INT(m.rc, 1);
    CHECK_STR_EQ(m.p[0], "a+b");
    /* malformed escapes: -1 only when the path matches; the capture is "" */
    m = pm("/session/{id}", "/session/a%zz");
    CHECK_EQ_INT(m.rc, -1);
    CHECK_EQ_INT(m.n, 1);
    CHECK_STR_EQ(m.p[0], "");
    CHECK_EQ_INT(pm("/session/{id}", "/session/a%zz/x").rc, 0);
    CHECK_EQ_INT(pm("/sessions/{id}", "/session/a%zz").rc, 0);
    CHECK_EQ_INT(pm("/session/{id}", "/session/a%").rc, -1);
    CHECK_EQ_INT(pm("/session/{id}", "/session/%4").rc, -1);
    CHECK_EQ_INT(pm("/session/{id}", "/session/%").rc, -1);

    /* capture in the middle, two captures */
    m = pm("/users/{user_id}/sessions", "/users/alice%40example.com/sessions");
    CHECK_EQ_INT(m.rc, 1);
    CHECK_EQ_INT(m.n, 1);
    CHECK_STR_EQ(m.p[0], "alice@example.com");
    m = pm("/users/{user_id}/sessions", "/users/a%2Fb/sessions");
    CHECK_EQ_INT(m.rc, 1);
    CHECK_STR_EQ(m.p[0], "a/b");
    CHECK_EQ_INT(pm("/users/{user_id}/sessions", "/users//sessions").rc, 0);
    CHECK_EQ_INT(pm("/users/{user_id}/sessions", "/users/bob").rc, 0);
    CHECK_EQ_INT(pm("/users/{user_id}/sessions", "/users/bob/").rc, 0);
    CHECK_EQ_INT(pm("/users/{user_id}/sessions", "/users/bob/sessions/").rc, 0);
    CHECK_EQ_INT(pm("/users/{user_id}/sessions", "/users/bob/sessionz").rc, 0);
    CHECK_EQ_INT(pm("/users/{user_id}/sessions", "/users/a/b/sessions").rc, 0);
    CHECK_EQ_INT(pm("/users/{user_id}/sessions", "/users/%zz/sessions").rc, -1);
    CHECK_EQ_INT(pm("/users/{user_id}/sessions", "/users/%zz/sessionz").rc, 0);
    m = pm("/a/{x}/b/{y}", "/a/1/b/2%2F3");
    CHECK_EQ_INT(m.rc, 1);
    CHECK_EQ_INT(m.n, 2);
    CHECK_STR_EQ(m.p[0], "1");
    CHECK_STR_EQ(m.p[1], "2/3");

    /* limits: more captures than params, no room in space */
    {
        char space[8];
        str_t params[2];
        CHECK_EQ_INT(http_path_match("/a/{x}/{y}", "/a/1/2", 6, space, sizeof space, params, 1), 0);
        CHECK_EQ_INT(http_path_match("/a/{x}/{y}", "/a/1/2", 6, space, sizeof space, params, 2), 1);
        CHECK_EQ_INT(http_path_match("/s/{id}", "/s/123456789", 12, space, sizeof space, params, 2), 0);
        CHECK_EQ_INT(http_path_match("/s/{id}", "/s/12345678", 11, space, sizeof space, params, 2), 1);
        CHECK(params[0].len == 8 && memcmp(params[0].p, "12345678", 8) == 0);
        /* len is honoured */
        CHECK_EQ_INT(http_path_match("/s/{id}", "/s/abc/def", 6, space, sizeof space, params, 2), 1);
        CHECK(params[0].len == 3 && memcmp(params[0].p, "abc", 3) == 0);
        CHECK_EQ_INT(http_path_match("/session", "/sessionXYZ", 8, space, sizeof space, params, 2), 1);
    }
}

/* ---- cred_bearer ---- */

static int bearer(const char *value, const char *want)
{
    str_t tok = { NULL, 0 };
    if (cred_bearer(value, strlen(value), &tok) != RC_OK) {
        fprintf(stderr, "  bearer(\"%s\") refused\n", value);
        return 0;
    }
    return tok.len == strlen(want) && memcmp(tok.p, want, tok.len) == 0;
}

static int bearer_bad(const char *value)
{
    str_t tok = { NULL, 0 };
    return cred_bearer(value, strlen(value), &tok) == RC_INVALID;
}

static void test_bearer(void)
{
    CHECK(bearer("Bearer abc.def.ghi", "abc.def.ghi"));
    CHECK(bearer("bearer abc", "abc"));
    CHECK(bearer("BEARER abc", "abc"));
    CHECK(bearer("bEaReR abc", "abc"));
    CHECK(bearer("Bearer    abc", "abc"));        /* several spaces */
    CHECK(bearer("Bearer abc   ", "abc"));        /* trailing spaces */
    CHECK(bearer("Bearer abc \t ", "abc"));
    CHECK(bearer("Bearer   a-b_c.d~e+f/g=", "a-b_c.d~e+f/g="));
    CHECK(bearer("Bearer x", "x"));

    CHECK(bearer_bad(""));
    CHECK(bearer_bad("Bearer"));                  /* missing token */
    CHECK(bearer_bad("Bearer "));
    CHECK(bearer_bad("Bearer      "));
    CHECK(bearer_bad("Bearer \t"));
    CHECK(bearer_bad("Basic dXNlcjpwYXNz"));
    CHECK(bearer_bad("Token abc"));
    CHECK(bearer_bad("Bearerabc"));
    CHECK(bearer_bad("Bearer:abc"));
    CHECK(bearer_bad("Bearer abc def"));          /* inner space */
    CHECK(bearer_bad("Bearer abc\tdef"));
    CHECK(bearer_bad("Bearer abc,def"));
    CHECK(bearer_bad("Bearer abc, Bearer def"));
    CHECK(bearer_bad(" Bearer abc"));
    CHECK(bearer_bad("Bear abc"));
    CHECK(bearer_bad("Bearers abc"));

    /* len is honoured */
    str_t tok;
    CHECK_EQ_INT(cred_bearer("Bearer abc def", 10, &tok), RC_OK);
    CHECK(tok.len == 3 && memcmp(tok.p, "abc", 3) == 0);
    CHECK_EQ_INT(cred_bearer("Bearer abc", 6, &tok), RC_INVALID);
    CHECK_EQ_INT(cred_bearer("Bearer abc", 7, &tok), RC_INVALID);
}

/* cred_bearer_offered: a token under the Bearer scheme, well-formed or not */
static int offered(const char *value)
{
    return cred_bearer_offered(value, strlen(value));
}

static void test_bearer_offered(void)
{
    CHECK(offered("Bearer abc"));
    CHECK(offered("bEaReR abc"));
    CHECK(offered("Bearer abc def")); /* malformed, but a token was offered */
    CHECK(offered("Bearer  \t x"));
    CHECK(!offered(""));
    CHECK(!offered("Bearer"));
    CHECK(!offered("Bearer "));
    CHECK(!offered("Bearer \t  "));
    CHECK(!offered("Basic dXNlcjpwYXNz"));
    CHECK(!offered("Token abc"));
    CHECK(!offered("Bearerabc"));
    CHECK(!offered(" Bearer abc"));
    CHECK(!cred_bearer_offered("Bearer abc", 7)); /* len is honoured */
    CHECK(cred_bearer_offered("Bearer abc", 8));
}

/* ---- cred_cookie ---- */

static int cookie(const char *header, const char *name, const char *want)
{
    str_t v = { NULL, 0 };
    if (cred_cookie(header, strlen(header), name, strlen(name), &v) != RC_OK) {
        fprintf(stderr, "  cookie(\"%s\", %s) not found\n", header, name);
        return 0;
    }
    if (v.len != strlen(want) || memcmp(v.p, want, v.len) != 0) {
        fprintf(stderr, "  cookie(\"%s\", %s) = \"%.*s\"\n", header, name, (int)v.len, v.p);
        return 0;
    }
    return 1;
}

static int no_cookie(const char *header, const char *name)
{
    str_t v = { NULL, 0 };
    return cred_cookie(header, strlen(header), name, strlen(name), &v) == RC_NOT_FOUND;
}

static void test_cookie(void)
{
    CHECK(cookie("session=tok", "session", "tok"));
    CHECK(cookie("a=1; session=tok; b=2", "session", "tok"));
    CHECK(cookie("a=1; b=2; session=tok", "session", "tok"));
    CHECK(cookie("a=1;session=tok;b=2", "session", "tok"));
    CHECK(cookie("a=1;   session=tok  ;  b=2", "session", "tok"));
    CHECK(cookie("session=tok;", "session", "tok"));
    CHECK(cookie("a=1; b=2", "a", "1"));
    CHECK(cookie("a=1; b=2", "b", "2"));
    CHECK(cookie("session=\"quoted.tok\"", "session", "quoted.tok"));
    CHECK(cookie("a=1; session=\"q\"; b=2", "session", "q"));
    CHECK(cookie("session=\"\"", "session", ""));
    CHECK(cookie("session=", "session", ""));
    CHECK(cookie("session=a.b.c=", "session", "a.b.c="));   /* '=' inside the value */
    /* a name that is a suffix/prefix of another is not matched */
    CHECK(cookie("xsession=a; session=b", "session", "b"));
    CHECK(cookie("session_old=a; session=b", "session", "b"));
    CHECK(cookie("sessionx=a; session=b", "session", "b"));
    CHECK(no_cookie("xsession=a", "session"));
    CHECK(no_cookie("sessionx=a; session_=b", "session"));
    CHECK(no_cookie("a=session=b", "session"));              /* in a value */
    CHECK(no_cookie("Session=a", "session"));                /* names are case-sensitive */
    CHECK(no_cookie("a=1; b=2", "session"));
    CHECK(no_cookie("", "session"));
    CHECK(no_cookie(";;;", "session"));
    CHECK(no_cookie("session", "session"));                  /* no '=' */
    CHECK(no_cookie("a=1; session; b=2", "session"));
    /* the first of two wins */
    CHECK(cookie("session=first; session=second", "session", "first"));

    /* len is honoured */
    str_t v;
    CHECK_EQ_INT(cred_cookie("a=1; session=tok", 4, "session", 7, &v), RC_NOT_FOUND);
    CHECK_EQ_INT(cred_cookie("session=tokXYZ", 11, "session", 7, &v), RC_OK);
    CHECK(v.len == 3 && memcmp(v.p, "tok", 3) == 0);
}

int main(void)
{
    RUN(test_pct_decode);
    RUN(test_path_match);
    RUN(test_bearer);
    RUN(test_bearer_offered);
    RUN(test_cookie);
    return UNIT_SUMMARY();
}
