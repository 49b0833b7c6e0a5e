/* createSession -- POST /session, plus /healthz, /readyz, /metrics. */
#include "handlers.h"
#include "server.h"

int main(void)
{
    return server_main("createSession", GROUP_CREATE);
}
