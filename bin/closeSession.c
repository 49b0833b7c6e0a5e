/* closeSession -- DELETE /session/{id}, DELETE /users/{user_id}/sessions, plus /healthz, /readyz, /metrics. */
#include "routes.h"
#include "server.h"

int main(int argc, char **argv)
{
    return server_main("closeSession", GROUP_CLOSE, argc, argv);
}
