/* placeholder until the bulk builder lands */
#include "core.h"
void espipe_open_bulk(lua_State *L) { (void)L; }
