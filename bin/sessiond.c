/* sessiond -- every route of the contract (the all-in-one service), plus /healthz, /readyz, /metrics. */
#include "handlers.h"
#include "server.h"

int main(void)
{
    return server_main("sessiond", GROUP_ALL);
}
