/* session_json.h -- the JSON form of a session: the object clients get
 * (and sessionctl exports), and its parser (sessionctl imports). */
#ifndef SESSION_JSON_H
#define SESSION_JSON_H

#include <stddef.h>
#include "buf.h"
#include "rc.h"
#include "session.h"

/* Appends the session's JSON object; adds "token" when token != NULL. */
rc_t session_json_render(const session_t *s, const char *token, buf_t *out);

/* The form sessionctl exports: the object plus the token rotation's state
 * ("token_generation", "rotated_at"), so that an import keeps every token
 * valid or refused as it was. */
rc_t session_json_render_export(const session_t *s, buf_t *out);

/* Parses one session in the JSON form session_json_render or
 * session_json_render_export writes (without "token"), e.g. a line of an
 * export; "idle_timeout", "idle_expires_at" (ignored: derived) and the
 * rotation's members are optional, for exports older than them. Strings are copied into space (reset
 * first), which s's views then point into. Pure. RC_INVALID on anything that
 * is not such an object, or breaks the session rules. */
rc_t session_json_parse(const char *text, size_t len, session_t *s, buf_t *space);

#endif
