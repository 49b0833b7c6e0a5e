/* sessionctl -- the operator's tool: list, show, close, stats, export,
 * import and copy sessions between stores (see src/admin.h). */
#include "admin.h"

int main(int argc, char **argv)
{
    return admin_main(argc, argv);
}
