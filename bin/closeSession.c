/* closeSession -- DELETE /session/{id}, DELETE /users/{user_id}/sessions, plus /healthz, /readyz, /metrics. */
#include "handlers.h"
#include "server.h"

int main(void)
{
    return server_main("closeSession", GROUP_CLOSE);
}
