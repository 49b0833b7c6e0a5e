/* sessiond -- every route of the contract (the all-in-one service), plus /healthz, /readyz, /metrics. */
#include "routes.h"
#include "server.h"

int main(int argc, char **argv)
{
    return server_main("sessiond", GROUP_ALL, argc, argv);
}
