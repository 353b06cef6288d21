/*
** SIGINT/SIGTERM as a flag a job polls, so Ctrl-C or a SIGTERM stops reading
** input and the job still flushes and accounts what it accepted before it
** exits. The handler only records the signal (async-signal-safe); a second
** signal while the first is pending restores the default action and
** re-raises it, so a user can still stop a job at once.
**
**   core.signals_trap([file]) -> true install (remembers the previous handlers);
**                           on the first signal file's descriptor is switched to
**                           /dev/null, so a read that starts after the check
**                           "was there a signal?" ends at once instead of
**                           waiting for input (a read already waiting gets EINTR)
**   core.signals_watch(file)  -> true the file to switch to /dev/null from now on
**                           (a file opened after the trap: a FIFO whose open blocks)
**   core.signals_received() -> "SIGINT" | "SIGTERM" | nil
**   core.signals_restore()  -> true   the previous handlers again
**
** A signal ignored on entry (a background job of a non-interactive shell,
** nohup) stays ignored, as the shell intended.
** SA_RESTART is not set on purpose: a blocking read of stdin or a FIFO
** returns EINTR instead of waiting for input that may never come.
** Not for nginx workers (nginx owns their signals); the pipelines that run
** there never call it.
*/
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <lualib.h>   /* LUA_FILEHANDLE on 5.1 */

#include "base/compat.h"
#include "core.h"

static volatile sig_atomic_t received = 0;
static struct sigaction previous_int, previous_term;
static int trapped = 0;
static volatile sig_atomic_t input_fd = -1, null_fd = -1;

static void on_signal(int sig)
{
    if (received != 0) {
        struct sigaction dfl;

        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        sigaction(sig, &dfl, NULL);
        raise(sig);
        return;
    }
    received = sig;
    if (input_fd >= 0 && null_fd >= 0)
        dup2(null_fd, input_fd);
}

/* The FILE* of a Lua file handle: the first member of the userdata on 5.1
** (FILE **), 5.2+ (luaL_Stream) and LuaJIT alike. -1 when closed. */
static int file_fd(lua_State *L, int idx)
{
    FILE **fp = (FILE **)luaL_checkudata(L, idx, LUA_FILEHANDLE);

    return (fp != NULL && *fp != NULL) ? fileno(*fp) : -1;
}

/* Installs on_signal for sig unless it is ignored; 0 on success. */
static int trap_one(int sig, struct sigaction *previous)
{
    struct sigaction sa;

    if (sigaction(sig, NULL, previous) != 0)
        return -1;
    if (previous->sa_handler == SIG_IGN)
        return 0;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    return sigaction(sig, &sa, NULL);
}

/* From now on the first signal switches the descriptor of the file at idx
** to /dev/null. -1 when /dev/null cannot be opened. */
static int watch(lua_State *L, int idx)
{
    int fd = file_fd(L, idx);

    if (null_fd < 0) {
        int nfd = open("/dev/null", O_RDONLY);
        if (nfd < 0)
            return -1;
        null_fd = nfd;
    }
    input_fd = fd;
    return 0;
}

static int l_trap(lua_State *L)
{
    if (trapped)
        return luaL_error(L, "signals_trap: already trapped (call signals_restore first)");
    received = 0;
    if (!lua_isnoneornil(L, 1) && watch(L, 1) != 0)
        return luaL_error(L, "signals_trap: /dev/null: %s", strerror(errno));
    if (trap_one(SIGINT, &previous_int) != 0)
        return luaL_error(L, "signals_trap: sigaction(SIGINT): %s", strerror(errno));
    if (trap_one(SIGTERM, &previous_term) != 0) {
        int e = errno;
        sigaction(SIGINT, &previous_int, NULL);
        if (null_fd >= 0)
            close(null_fd);
        null_fd = input_fd = -1;
        return luaL_error(L, "signals_trap: sigaction(SIGTERM): %s", strerror(e));
    }
    trapped = 1;
    lua_pushboolean(L, 1);
    return 1;
}

static int l_watch(lua_State *L)
{
    if (watch(L, 1) != 0)
        return luaL_error(L, "signals_watch: /dev/null: %s", strerror(errno));
    lua_pushboolean(L, 1);
    return 1;
}

static int l_received(lua_State *L)
{
    int sig = received;

    if (sig == SIGINT)
        lua_pushliteral(L, "SIGINT");
    else if (sig == SIGTERM)
        lua_pushliteral(L, "SIGTERM");
    else
        lua_pushnil(L);
    return 1;
}

static int l_restore(lua_State *L)
{
    if (trapped) {
        sigaction(SIGINT, &previous_int, NULL);
        sigaction(SIGTERM, &previous_term, NULL);
        trapped = 0;
    }
    if (null_fd >= 0)
        close(null_fd);
    null_fd = input_fd = -1;
    received = 0;
    lua_pushboolean(L, 1);
    return 1;
}

/* The same shape as every espipe_open_*: a table of this concern's functions (core.c). */
void espipe_open_signals(lua_State *L)
{
    static const luaL_Reg fns[] = {
        { "signals_trap", l_trap },
        { "signals_watch", l_watch },
        { "signals_received", l_received },
        { "signals_restore", l_restore },
        { NULL, NULL }
    };
    espipe_setfuncs(L, fns, 0);
}
