/* admin.h -- sessionctl, the operator's command-line tool: list, show and
 * close sessions, count them, and export/import/copy them as JSON lines
 * (which is also how a deployment moves from LMDB to Redis and back). */
#ifndef ADMIN_H
#define ADMIN_H

/* Runs one command; returns the process exit status (0 ok, 1 failure,
 * 2 usage). Output to stdout, diagnostics to stderr. */
int admin_main(int argc, char **argv);

#endif
