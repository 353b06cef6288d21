/* placeholder until the bulk response scanner lands */
#include "core.h"
void espipe_open_bulk_response(lua_State *L) { (void)L; }
