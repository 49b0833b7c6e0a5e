/* readSession -- GET /session/{id}, GET /users/{user_id}/sessions, GET /validate, plus /healthz, /readyz, /metrics. */
#include "routes.h"
#include "server.h"

int main(int argc, char **argv)
{
    return server_main("readSession", GROUP_READ, argc, argv);
}
