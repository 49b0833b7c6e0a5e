/* createSession -- POST /session, plus /healthz, /readyz, /metrics. */
#include "routes.h"
#include "server.h"

int main(int argc, char **argv)
{
    return server_main("createSession", GROUP_CREATE, argc, argv);
}
