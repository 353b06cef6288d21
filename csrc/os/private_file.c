/*
** espipe.core.create_private(path) -> true | nil, message
** Creates path with mode 0600 if it does not exist, and sets an existing
** regular file to 0600, before any content is written: files that name a
** cluster (checkpoints, tune state, manifests, dead letters) are never
** readable by others, whatever the umask. A device or FIFO keeps its mode
** (--dead-letter /dev/null run as root must not make /dev/null private).
** The caller then opens it with io.open.
*/
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/compat.h"
#include "core.h"

static int l_create_private(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, S_IRUSR | S_IWUSR);
    if (fd < 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", path, strerror(errno));
        return 2;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || (S_ISREG(st.st_mode) && fchmod(fd, S_IRUSR | S_IWUSR) != 0)) {
        int saved = errno;
        close(fd);
        lua_pushnil(L);
        lua_pushfstring(L, "%s: cannot make it private: %s", path, strerror(saved));
        return 2;
    }
    if (close(fd) != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", path, strerror(errno));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

void espipe_open_private_file(lua_State *L)
{
    static const luaL_Reg fns[] = {
        { "create_private", l_create_private },
        { NULL, NULL }
    };
    espipe_setfuncs(L, fns, 0);
}
