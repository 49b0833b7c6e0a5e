/* fuzz_token -- token_verify on arbitrary bytes: never crashes, and accepts
 * only what the policy's key signed (the fuzzer cannot forge HMAC, so an
 * accepted input means a bug). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned char key[] = "fuzzing-key-fuzzing-key-fuzzing-key!";
    token_policy p = { key, sizeof key - 1, NULL, NULL, 30, "session:admin" };
    token_claims c;
    if (size > 0 && data[0] == 'I') {
        p.issuer = "iss";
        p.audience = "aud";
    }
    char *tok = malloc(size ? size : 1);
    memcpy(tok, data, size);
    if (token_verify(&p, tok, size, 1700000000, &c) == RC_OK)
        abort(); /* a forged token was accepted */
    free(tok);
    return 0;
}
