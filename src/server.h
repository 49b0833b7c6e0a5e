/* server.h -- the one entry point of every executable: load and validate
 * the configuration, open the store, serve the given routes until SIGTERM
 * or SIGINT, purge expired sessions in the background, shut down cleanly. */
#ifndef SERVER_H
#define SERVER_H

/* name: the executable's name (for logs and errors); groups: the GROUP_*
 * bits of routes.h it serves. With the one argument --routes, prints the
 * route table (api_print_routes) and exits. Returns the process exit
 * status: 0 after a clean shutdown, 2 for a configuration it refuses or an
 * unknown argument, 1 for other failures. */
int server_main(const char *name, unsigned groups, int argc, char **argv);

#endif
