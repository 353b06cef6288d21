/*
** Child processes for the worker pool (lua/espipe/pipeline/workers.lua):
** start a program with pipes for its stdout (and optionally stdin/stderr),
** read and write those pipes without blocking, wait for several of them at
** once, signal and reap the children. Nothing here calls back into Lua; the
** only waits are poll() with the caller's timeout and the short read that
** tells whether exec succeeded.
**
**   core.process_spawn(argv, { stdin = false, stderr = false })
**       -> { pid =, stdout = fd, stdin = fd|nil, stderr = fd|nil } | nil, message
**       argv[1] is looked up in PATH. The child gets its own process group
**       (a Ctrl-C at the terminal reaches only the parent, which forwards
**       it once) and, on Linux, SIGTERM when the parent dies. A stdin pipe
**       makes this process ignore SIGPIPE: writing to a worker that died
**       must fail with EPIPE, not kill the parent. Parent ends are
**       non-blocking and close-on-exec (one child never holds another's pipe).
**   core.fd_read(fd [, max]) -> bytes | "" (nothing yet) | false (end of file) | nil, message
**   core.fd_write(fd, s [, i]) -> bytes written from s[i..] (0: pipe full) | nil, message
**   core.fd_close(fd) -> true | nil, message
**   core.fd_poll(read_fds, write_fds, timeout_ms) -> { [fd] = true, ... } the ready ones
**       (end of file and errors count as ready; a signal ends the wait early)
**   core.process_kill(pid, "SIGTERM"|"SIGINT"|"SIGKILL"|...) -> true | nil, message
**   core.process_wait(pid [, block]) -> "running" | "exited", code
**       | "signaled", "SIGKILL" (the name; "signal N" when unnamed) | nil, message
**   core.process_cpus() -> online CPUs (at least 1)
**   core.process_id()   -> this process's pid
*/
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "base/compat.h"
#include "core.h"

static const struct { int sig; const char *name; } SIGNALS[] = {
    { SIGHUP, "SIGHUP" }, { SIGINT, "SIGINT" }, { SIGQUIT, "SIGQUIT" }, { SIGILL, "SIGILL" },
    { SIGABRT, "SIGABRT" }, { SIGFPE, "SIGFPE" }, { SIGKILL, "SIGKILL" }, { SIGSEGV, "SIGSEGV" },
    { SIGPIPE, "SIGPIPE" }, { SIGALRM, "SIGALRM" }, { SIGTERM, "SIGTERM" }, { SIGUSR1, "SIGUSR1" },
    { SIGUSR2, "SIGUSR2" }, { SIGBUS, "SIGBUS" }, { SIGCONT, "SIGCONT" }, { SIGSTOP, "SIGSTOP" },
};
#define NSIGNALS (sizeof SIGNALS / sizeof SIGNALS[0])

static int failure_errno(lua_State *L, const char *what, int e)
{
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", what, strerror(e));
    return 2;
}

/* 0 on success; on failure errno is set and nothing is left open. */
static int make_pipe(int fds[2])
{
    if (pipe(fds) != 0)
        return -1;
    if (fcntl(fds[0], F_SETFD, FD_CLOEXEC) != 0 || fcntl(fds[1], F_SETFD, FD_CLOEXEC) != 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        errno = e;
        return -1;
    }
    return 0;
}

static void close_pair(int fds[2])
{
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    fds[0] = fds[1] = -1;
}

static int set_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    return (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) ? -1 : 0;
}

/* In the child after fork: only async-signal-safe calls, then exec or _exit.
** On failure the errno goes to report (close-on-exec: EOF means exec worked). */
static void exec_child(char *const *argv, int in_fd, int out_fd, int err_fd, int report, pid_t parent)
{
    sigset_t none;
    int e;

    setpgid(0, 0);
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(127); /* the parent died before the line above */
#else
    (void)parent;
#endif
    signal(SIGPIPE, SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if ((in_fd >= 0 && dup2(in_fd, 0) < 0) || dup2(out_fd, 1) < 0 || (err_fd >= 0 && dup2(err_fd, 2) < 0))
        goto fail;
    if (in_fd < 0) {
        int nfd = open("/dev/null", O_RDONLY);
        if (nfd < 0 || dup2(nfd, 0) < 0)
            goto fail;
    }
    execvp(argv[0], argv);
fail:
    e = errno;
    if (write(report, &e, sizeof e) < 0)
        _exit(127);
    _exit(127);
}

/* argv as a NULL-terminated array of the table's strings (which the table
** keeps alive during the call). NULL when out of memory. */
static char **argv_of(lua_State *L, int idx, size_t n)
{
    char **argv = (char **)calloc(n + 1, sizeof *argv);
    size_t i;

    if (argv == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        lua_rawgeti(L, idx, (int)i + 1);
        argv[i] = (char *)lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    return argv;
}

static int opt_flag(lua_State *L, int idx, const char *key)
{
    int on;

    if (lua_isnoneornil(L, idx))
        return 0;
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_getfield(L, idx, key);
    on = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return on;
}

struct pipes { int in[2], out[2], err[2], report[2]; };

static void close_all(struct pipes *p)
{
    close_pair(p->in);
    close_pair(p->out);
    close_pair(p->err);
    close_pair(p->report);
}

static int open_pipes(struct pipes *p, int want_in, int want_err)
{
    p->in[0] = p->in[1] = p->out[0] = p->out[1] = -1;
    p->err[0] = p->err[1] = p->report[0] = p->report[1] = -1;
    if (make_pipe(p->out) != 0 || make_pipe(p->report) != 0 || (want_in && make_pipe(p->in) != 0)
        || (want_err && make_pipe(p->err) != 0)) {
        int e = errno;
        close_all(p);
        errno = e;
        return -1;
    }
    return 0;
}

/* After fork, in the parent: 0 when exec worked, else the child's errno. */
static int exec_result(struct pipes *p)
{
    int e = 0;
    ssize_t got;

    close(p->report[1]);
    p->report[1] = -1;
    do
        got = read(p->report[0], &e, sizeof e);
    while (got < 0 && errno == EINTR);
    close(p->report[0]);
    p->report[0] = -1;
    return got == (ssize_t)sizeof e ? e : 0;
}

static void push_fd_field(lua_State *L, const char *key, int fd)
{
    if (fd < 0)
        return;
    lua_pushinteger(L, fd);
    lua_setfield(L, -2, key);
}

static int l_spawn(lua_State *L)
{
    size_t n, i;
    int want_in = opt_flag(L, 2, "stdin"), want_err = opt_flag(L, 2, "stderr");
    struct pipes p;
    char **argv;
    pid_t pid, parent = getpid();
    int e;

    luaL_checktype(L, 1, LUA_TTABLE);
    n = (size_t)espipe_rawlen(L, 1);
    if (n == 0)
        return luaL_error(L, "process_spawn: argv is empty");
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, (int)i);
        if (lua_type(L, -1) != LUA_TSTRING)
            return luaL_error(L, "process_spawn: argv[%d] is not a string", (int)i);
        lua_pop(L, 1);
    }
    argv = argv_of(L, 1, n);
    if (argv == NULL)
        return luaL_error(L, "process_spawn: out of memory");
    if (open_pipes(&p, want_in, want_err) != 0) {
        e = errno;
        free(argv);
        return failure_errno(L, "process_spawn: pipe", e);
    }
    if (want_in)
        signal(SIGPIPE, SIG_IGN);
    pid = fork();
    if (pid == 0)
        exec_child(argv, p.in[0], p.out[1], p.err[1], p.report[1], parent);
    e = errno;
    free(argv);
    if (pid < 0) {
        close_all(&p);
        return failure_errno(L, "process_spawn: fork", e);
    }
    close(p.out[1]);
    p.out[1] = -1;
    if (p.in[0] >= 0) { close(p.in[0]); p.in[0] = -1; }
    if (p.err[1] >= 0) { close(p.err[1]); p.err[1] = -1; }
    e = exec_result(&p);
    if (e == 0 && (set_nonblocking(p.out[0]) != 0 || (p.in[1] >= 0 && set_nonblocking(p.in[1]) != 0)
                   || (p.err[0] >= 0 && set_nonblocking(p.err[0]) != 0)))
        e = errno;
    if (e != 0) {
        close_all(&p);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
        lua_pushnil(L);
        lua_rawgeti(L, 1, 1);
        lua_pushfstring(L, "process_spawn: %s: %s", lua_tostring(L, -1), strerror(e));
        lua_remove(L, -2);
        return 2;
    }
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, (lua_Integer)pid);
    lua_setfield(L, -2, "pid");
    push_fd_field(L, "stdout", p.out[0]);
    push_fd_field(L, "stdin", p.in[1]);
    push_fd_field(L, "stderr", p.err[0]);
    return 1;
}

/* One process reads one pipe at a time: a static buffer needs no cleanup
** when pushing the string raises. */
static char read_buf[65536];

static int l_read(lua_State *L)
{
    int fd = (int)luaL_checkinteger(L, 1);
    lua_Integer max = luaL_optinteger(L, 2, (lua_Integer)sizeof read_buf);
    ssize_t got;

    if (max <= 0 || max > (lua_Integer)sizeof read_buf)
        max = (lua_Integer)sizeof read_buf;
    do
        got = read(fd, read_buf, (size_t)max);
    while (got < 0 && errno == EINTR);
    if (got < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            lua_pushliteral(L, "");
            return 1;
        }
        return failure_errno(L, "read", errno);
    }
    if (got == 0)
        lua_pushboolean(L, 0);
    else
        lua_pushlstring(L, read_buf, (size_t)got);
    return 1;
}

static int l_write(lua_State *L)
{
    int fd = (int)luaL_checkinteger(L, 1);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    lua_Integer from = luaL_optinteger(L, 3, 1);
    ssize_t put;

    if (from < 1 || (size_t)from > len + 1)
        return luaL_error(L, "fd_write: position %d is outside the string", (int)from);
    do
        put = write(fd, s + from - 1, len - (size_t)(from - 1));
    while (put < 0 && errno == EINTR);
    if (put < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            lua_pushinteger(L, 0);
            return 1;
        }
        return failure_errno(L, "write", errno);
    }
    lua_pushinteger(L, (lua_Integer)put);
    return 1;
}

static int l_close(lua_State *L)
{
    int fd = (int)luaL_checkinteger(L, 1);

    if (close(fd) != 0 && errno != EINTR)
        return failure_errno(L, "close", errno);
    lua_pushboolean(L, 1);
    return 1;
}

/* Appends the integers of the table at idx to fds with events ev. */
static nfds_t add_fds(lua_State *L, int idx, struct pollfd *fds, nfds_t at, size_t cap, short ev)
{
    size_t n = (size_t)espipe_rawlen(L, idx), i;

    for (i = 1; i <= n && at < cap; i++) {
        lua_rawgeti(L, idx, (int)i);
        fds[at].fd = (int)lua_tointeger(L, -1);
        fds[at].events = ev;
        fds[at].revents = 0;
        lua_pop(L, 1);
        at++;
    }
    return at;
}

static int l_poll(lua_State *L)
{
    size_t cap, i;
    nfds_t n;
    struct pollfd *fds;
    int timeout = (int)luaL_checkinteger(L, 3), rc, e;

    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    cap = (size_t)espipe_rawlen(L, 1) + (size_t)espipe_rawlen(L, 2);
    fds = (struct pollfd *)malloc((cap > 0 ? cap : 1) * sizeof *fds);
    if (fds == NULL)
        return luaL_error(L, "fd_poll: out of memory");
    n = add_fds(L, 1, fds, 0, cap, POLLIN);
    n = add_fds(L, 2, fds, n, cap, POLLOUT);
    rc = poll(fds, n, timeout);
    e = errno;
    if (rc < 0 && e != EINTR) {
        free(fds);
        return failure_errno(L, "poll", e);
    }
    lua_createtable(L, 0, rc > 0 ? rc : 0);
    for (i = 0; rc > 0 && i < (size_t)n; i++) {
        if (fds[i].revents == 0)
            continue;
        lua_pushboolean(L, 1);
        lua_rawseti(L, -2, fds[i].fd);
    }
    free(fds);
    return 1;
}

static int signal_number(const char *name)
{
    size_t i;

    for (i = 0; i < NSIGNALS; i++)
        if (strcmp(SIGNALS[i].name, name) == 0)
            return SIGNALS[i].sig;
    return -1;
}

static void push_signal_name(lua_State *L, int sig)
{
    size_t i;

    for (i = 0; i < NSIGNALS; i++)
        if (SIGNALS[i].sig == sig) {
            lua_pushstring(L, SIGNALS[i].name);
            return;
        }
    lua_pushfstring(L, "signal %d", sig);
}

static int l_kill(lua_State *L)
{
    lua_Integer pid = luaL_checkinteger(L, 1);
    const char *name = luaL_optstring(L, 2, "SIGTERM");
    int sig = signal_number(name);

    if (sig < 0)
        return luaL_error(L, "process_kill: unknown signal %s", name);
    if (pid <= 0)
        return luaL_error(L, "process_kill: pid must be positive");
    if (kill((pid_t)pid, sig) != 0)
        return failure_errno(L, "kill", errno);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_wait(lua_State *L)
{
    lua_Integer pid = luaL_checkinteger(L, 1);
    int block = lua_toboolean(L, 2), status = 0;
    pid_t got;

    if (pid <= 0)
        return luaL_error(L, "process_wait: pid must be positive");
    do
        got = waitpid((pid_t)pid, &status, block ? 0 : WNOHANG);
    while (got < 0 && errno == EINTR);
    if (got < 0)
        return failure_errno(L, "waitpid", errno);
    if (got == 0) {
        lua_pushliteral(L, "running");
        return 1;
    }
    if (WIFSIGNALED(status)) {
        lua_pushliteral(L, "signaled");
        push_signal_name(L, WTERMSIG(status));
        return 2;
    }
    lua_pushliteral(L, "exited");
    lua_pushinteger(L, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 2;
}

static int l_cpus(lua_State *L)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    lua_pushinteger(L, n > 0 ? (lua_Integer)n : 1);
    return 1;
}

static int l_pid(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)getpid());
    return 1;
}

void espipe_open_process(lua_State *L)
{
    static const luaL_Reg fns[] = {
        { "process_spawn", l_spawn },
        { "fd_read", l_read },
        { "fd_write", l_write },
        { "fd_close", l_close },
        { "fd_poll", l_poll },
        { "process_kill", l_kill },
        { "process_wait", l_wait },
        { "process_cpus", l_cpus },
        { "process_id", l_pid },
        { NULL, NULL }
    };
    espipe_setfuncs(L, fns, 0);
}
