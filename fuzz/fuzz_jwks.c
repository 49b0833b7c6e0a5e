/* fuzz_jwks -- JWKS files (jwks_parse), and signature checks with the keys
 * they yield (jwks_verify).
 *
 * Input: the text of a JWKS. Oracle:
 *   - every entry of a "keys" array is either used or told to the warning
 *     callback, never both, never neither: on RC_OK, jwks_count + warnings
 *     is the array's size (read independently with jansson), and
 *     jwks_count >= 1; each warning is one printable line.
 *   - RC_INVALID leaves *out NULL and says why in err (one printable line).
 *   - jwks_count is at most the number of entries that could be used at
 *     all: objects with a string "kid" of 1..256 bytes, "kty" RSA, EC or
 *     OKP, "use" absent or "sig".
 *   - the fuzzer cannot sign: for every such entry's kid and every
 *     algorithm, jwks_verify of a fixed message with a signature made of
 *     input bytes must not be RC_OK (nor anything but RC_UNAUTHORIZED).
 * Any oracle failure abort()s. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "jwks.h"

static size_t warnings;

static int printable_line(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

static void on_warn(void *arg, const char *why)
{
    (void)arg;
    if (!printable_line(why))
        abort();
    warnings++;
}

static int usable_shape(json_t *k)
{
    json_t *kid = json_object_get(k, "kid"), *kty = json_object_get(k, "kty");
    json_t *use = json_object_get(k, "use");
    if (!json_is_object(k) || !json_is_string(kid) || json_string_length(kid) == 0 ||
        json_string_length(kid) > JWKS_KID_MAX || !json_is_string(kty))
        return 0;
    const char *t = json_string_value(kty);
    if (strcmp(t, "RSA") != 0 && strcmp(t, "EC") != 0 && strcmp(t, "OKP") != 0)
        return 0;
    return use == NULL || (json_is_string(use) && strcmp(json_string_value(use), "sig") == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jwks *ks = (jwks *)&warnings; /* must be reset */
    char err[300] = "";
    warnings = 0;
    rc_t rc = jwks_parse((const char *)data, size, &ks, on_warn, NULL, err, sizeof err);
    if (rc == RC_INVALID) {
        if (ks != NULL || !printable_line(err))
            abort();
        return 0;
    }
    if (rc != RC_OK || ks == NULL || jwks_count(ks) == 0 || jwks_serial(ks) == 0)
        abort();

    json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    json_t *keys = json_object_get(root, "keys");
    if (!json_is_array(keys) || jwks_count(ks) + warnings != json_array_size(keys))
        abort();
    size_t shaped = 0, i;
    json_t *k;
    static const jwks_alg algs[] = { JWKS_RS256, JWKS_PS256, JWKS_ES256, JWKS_EDDSA };
    unsigned char sig[JWKS_SIG_MAX];
    size_t sl = size < sizeof sig ? size : sizeof sig;
    memcpy(sig, data, sl);
    json_array_foreach(keys, i, k) {
        if (!usable_shape(k))
            continue;
        shaped++;
        json_t *kid = json_object_get(k, "kid");
        for (size_t a = 0; a < sizeof algs / sizeof algs[0]; a++) {
            /* the signature's length as each kind of key expects it, and as given */
            size_t lens[] = { 64, 256, 512, sl };
            for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
                size_t n = lens[l] <= sl ? lens[l] : sl;
                if (jwks_verify(ks, json_string_value(kid), json_string_length(kid), algs[a],
                                (const unsigned char *)"h.c", 3, sig, n) != RC_UNAUTHORIZED)
                    abort();
            }
        }
    }
    if (jwks_count(ks) > shaped)
        abort();
    json_decref(root);
    jwks_free(ks);
    return 0;
}
