/* rc.c -- names of the core result codes, for logs. */
#include "rc.h"

const char *rc_str(rc_t rc)
{
    switch (rc) {
    case RC_OK: return "ok";
    case RC_ERR: return "error";
    case RC_NOMEM: return "nomem";
    case RC_INVALID: return "invalid";
    case RC_UNAUTHORIZED: return "unauthorized";
    case RC_DENIED: return "denied";
    case RC_NOT_FOUND: return "not_found";
    case RC_EXISTS: return "exists";
    case RC_TOO_LARGE: return "too_large";
    case RC_UNSUPPORTED: return "unsupported";
    case RC_FULL: return "full";
    case RC_UNAVAILABLE: return "unavailable";
    case RC_LIMIT: return "limit";
    case RC_PENDING: return "pending";
    }
    return "unknown";
}
