/* placeholder until routing lands */
#include "core.h"
void espipe_open_routing(lua_State *L) { (void)L; }
