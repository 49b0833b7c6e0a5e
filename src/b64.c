/* b64.c -- strict base64url (see b64.h). */
#include "b64.h"

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void b64url_encode(const unsigned char *in, size_t len, char *out)
{
    size_t i = 0;
    while (i + 3 <= len) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        *out++ = alphabet[v >> 18 & 63];
        *out++ = alphabet[v >> 12 & 63];
        *out++ = alphabet[v >> 6 & 63];
        *out++ = alphabet[v & 63];
        i += 3;
    }
    if (len - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        *out++ = alphabet[v >> 18 & 63];
        *out++ = alphabet[v >> 12 & 63];
    } else if (len - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        *out++ = alphabet[v >> 18 & 63];
        *out++ = alphabet[v >> 12 & 63];
        *out++ = alphabet[v >> 6 & 63];
    }
    *out = '\0';
}

/* (b64.h) */
const unsigned char b64url_value1[256] = {
    ['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6, ['G'] = 7, ['H'] = 8,
    ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15,
    ['P'] = 16, ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22,
    ['W'] = 23, ['X'] = 24, ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29,
    ['d'] = 30, ['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36,
    ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42, ['q'] = 43,
    ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49, ['x'] = 50,
    ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56, ['4'] = 57,
    ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['-'] = 63, ['_'] = 64,
};

/* Four characters at a time, by table (every token's three segments are
 * decoded on a verification the cache does not answer). */
rc_t b64url_decode(const char *in, size_t len, unsigned char *out, size_t *outlen)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t full = len / 4 * 4, o = 0, rem = len - full;
    if (rem == 1)
        return RC_INVALID;
    for (size_t i = 0; i < full; i += 4) {
        unsigned a = b64url_value1[p[i]], b = b64url_value1[p[i + 1]];
        unsigned c = b64url_value1[p[i + 2]], d = b64url_value1[p[i + 3]];
        if (a == 0 || b == 0 || c == 0 || d == 0)
            return RC_INVALID;
        unsigned v = (a - 1) << 18 | (b - 1) << 12 | (c - 1) << 6 | (d - 1);
        out[o++] = (unsigned char)(v >> 16);
        out[o++] = (unsigned char)(v >> 8);
        out[o++] = (unsigned char)v;
    }
    if (rem > 0) {
        unsigned a = b64url_value1[p[full]], b = b64url_value1[p[full + 1]];
        unsigned c = rem == 3 ? b64url_value1[p[full + 2]] : 1;
        if (a == 0 || b == 0 || c == 0)
            return RC_INVALID;
        unsigned v = (a - 1) << 12 | (b - 1) << 6 | (c - 1); /* 18 bits, 12 or 18 used */
        out[o++] = (unsigned char)(v >> 10);
        if (rem == 3)
            out[o++] = (unsigned char)(v >> 2);
        /* non-canonical: the bits past the last byte must be zero */
        if ((rem == 3 ? v & 3u : v & 0x3ffu) != 0)
            return RC_INVALID;
    }
    *outlen = o;
    return RC_OK;
}
