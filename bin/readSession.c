/* readSession -- GET /session/{id}, GET /users/{user_id}/sessions, GET /validate, plus /healthz, /readyz, /metrics. */
#include "handlers.h"
#include "server.h"

int main(void)
{
    return server_main("readSession", GROUP_READ);
}
