/*
** NDJSON lines straight into a bulk buffer (see bulk_lines.c): the per-line
** work of `espipe load` for the lines it can take without Lua.
*/
#ifndef ESPIPE_BULK_LINES_H
#define ESPIPE_BULK_LINES_H

#include "base/compat.h"

#define ESPIPE_BULK_LINES_MT "espipe.bulk_lines"

/* core.bulk_lines_new(cfg) and the appender's methods. */
void espipe_open_bulk_lines(lua_State *L);

#endif
