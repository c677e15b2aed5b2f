/* standin: a stand-in process for procclean's namespace tests (see tests/nslib.py).
 *
 * It keeps whatever argv it was exec'd with, so that
 *     execv("/tmp/.../standin", ["uvicorn", "main:app", "--reload"])
 * shows up in `ps -ef` as `uvicorn main:app --reload`, and does what the spec file named by
 * the environment variable STANDIN_SPEC says, one `key=value` per line:
 *
 *   id=NODEID         name used for the ready file
 *   term=default|ignore|catch|delay:MS
 *                     SIGTERM: die (default), ignore it, catch it and go on running (so that
 *                     onterm= children are started), or exit MS ms after receiving it
 *   onterm=PATH       another spec file: on the first SIGTERM (term=catch or delay:MS), fork
 *                     and exec it as for child= (a child forked while a stop runs), repeatable
 *   respawn=1         whenever a child exits, fork the first child= spec again (a master that
 *                     respawns its worker)
 *   listen=HOST:PORT  listen on TCP (127.0.0.1, 0.0.0.0, ::1, ::, [::1]:8000 ...), repeatable
 *   connect=HOST:PORT open a client connection and keep it (retried for 5 s), repeatable
 *   child=PATH        another spec file: fork, then exec that spec's argv (`arg=` lines) with
 *                     the stand-in itself, or with `path=` (a real program) when given
 *   inherit=1         children keep the listening sockets (fork after listen); default: closed
 *   reap=0            never reap children (they stay zombies when they exit); default: reap
 *   exit=now          exit right after reporting ready (makes a zombie under a reap=0 parent)
 *   http=STATUS       answer every connection to the listeners with `HTTP/1.0 STATUS` (for
 *                     health checks); default: never accept (connections wait in the backlog)
 *   comm=NAME         the kernel's comm (default: basename of argv[0], as for a real program)
 *   cwd=DIR           chdir before anything else
 *   uid=N / gid=N     (read by the parent, applied in the forked child before exec)
 *   ready=DIR         after listen/connect/children are set up, write DIR/<id> = "<pid>\n";
 *                     for a child with path= the parent writes it once the exec succeeded
 *
 * Build: cc -O2 -o standin standin.c.  Only ever run inside a throw-away PID namespace. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXV 256
#define MAXL 4096

struct spec {
    char *id;
    char *term;
    char *listen[MAXV];
    int nlisten;
    char *connect[MAXV];
    int nconnect;
    char *child[MAXV];
    int nchild;
    char *onterm[MAXV];
    int nonterm;
    int respawn;
    char *args[MAXV];
    int nargs;
    char *path;
    char *ready;
    char *cwd;
    char *comm;
    int inherit;
    int http;
    int reap;
    int exit_now;
    long uid, gid;
};

static char self_path[MAXL];
static volatile sig_atomic_t got_term = 0;
static volatile sig_atomic_t child_exited = 0;
static int reap_children = 1;

static void die(const char *what, const char *arg)
{
    fprintf(stderr, "standin[%d]: %s %s: %s\n", (int)getpid(), what, arg ? arg : "",
            strerror(errno));
    _exit(97);
}

static char *dupstr(const char *s)
{
    char *d = strdup(s);
    if (!d)
        die("strdup", NULL);
    return d;
}

/* Values may hold any byte but newline and NUL; `\n`, `\\` and `\xHH` are unescaped. */
static char *unescape(const char *s)
{
    char *out = dupstr(s), *o = out;
    while (*s) {
        if (s[0] == '\\' && s[1] == 'n') { *o++ = '\n'; s += 2; }
        else if (s[0] == '\\' && s[1] == '\\') { *o++ = '\\'; s += 2; }
        else if (s[0] == '\\' && s[1] == 'x' && s[2] && s[3]) {
            char hex[3] = {s[2], s[3], 0};
            *o++ = (char)strtol(hex, NULL, 16);
            s += 4;
        } else
            *o++ = *s++;
    }
    *o = 0;
    return out;
}

static void read_spec(const char *file, struct spec *sp)
{
    FILE *f = fopen(file, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;

    memset(sp, 0, sizeof *sp);
    sp->reap = 1;
    sp->uid = sp->gid = -1;
    if (!f)
        die("cannot open spec", file);
    while ((n = getline(&line, &cap, f)) >= 0) {
        char *eq, *key, *val;
        if (n > 0 && line[n - 1] == '\n')
            line[--n] = 0;
        if (!*line || *line == '#')
            continue;
        eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = 0;
        key = line;
        val = unescape(eq + 1);
        if (!strcmp(key, "id")) sp->id = val;
        else if (!strcmp(key, "term")) sp->term = val;
        else if (!strcmp(key, "listen") && sp->nlisten < MAXV) sp->listen[sp->nlisten++] = val;
        else if (!strcmp(key, "connect") && sp->nconnect < MAXV) sp->connect[sp->nconnect++] = val;
        else if (!strcmp(key, "child") && sp->nchild < MAXV) sp->child[sp->nchild++] = val;
        else if (!strcmp(key, "onterm") && sp->nonterm < MAXV) sp->onterm[sp->nonterm++] = val;
        else if (!strcmp(key, "respawn")) sp->respawn = atoi(val);
        else if (!strcmp(key, "arg") && sp->nargs < MAXV - 1) sp->args[sp->nargs++] = val;
        else if (!strcmp(key, "path")) sp->path = val;
        else if (!strcmp(key, "ready")) sp->ready = val;
        else if (!strcmp(key, "cwd")) sp->cwd = val;
        else if (!strcmp(key, "comm")) sp->comm = val;
        else if (!strcmp(key, "inherit")) sp->inherit = atoi(val);
        else if (!strcmp(key, "reap")) sp->reap = atoi(val);
        else if (!strcmp(key, "http")) sp->http = atoi(val);
        else if (!strcmp(key, "exit")) sp->exit_now = !strcmp(val, "now");
        else if (!strcmp(key, "uid")) sp->uid = atol(val);
        else if (!strcmp(key, "gid")) sp->gid = atol(val);
    }
    sp->args[sp->nargs] = NULL;
    free(line);
    fclose(f);
}

static void write_ready(const char *dir, const char *id, pid_t pid)
{
    char tmp[MAXL], final[MAXL];
    FILE *f;
    if (!dir || !id)
        return;
    snprintf(tmp, sizeof tmp, "%s/.%s.%d.tmp", dir, id, (int)getpid());
    snprintf(final, sizeof final, "%s/%s", dir, id);
    f = fopen(tmp, "w");
    if (!f)
        die("cannot write ready file", tmp);
    fprintf(f, "%d\n", (int)pid);
    fclose(f);
    if (rename(tmp, final) < 0)
        die("rename", final);
}

/* "127.0.0.1:8000", "0.0.0.0:8000", "[::1]:8000", "::1:8000", ":::8000" */
static int parse_addr(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    int port;
    size_t hl;
    if (!colon)
        return -1;
    port = atoi(colon + 1);
    hl = (size_t)(colon - spec);
    if (hl >= sizeof host)
        return -1;
    memcpy(host, spec, hl);
    host[hl] = 0;
    if (host[0] == '[' && hl >= 2 && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = 0;
    }
    memset(ss, 0, sizeof *ss);
    if (strchr(host, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((unsigned short)port);
        if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
            return -1;
        *len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((unsigned short)port);
        if (inet_pton(AF_INET, host[0] ? host : "0.0.0.0", &a->sin_addr) != 1)
            return -1;
        *len = sizeof *a;
    }
    return 0;
}

static int do_listen(const char *spec)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd, one = 1;
    if (parse_addr(spec, &ss, &len) < 0) {
        errno = EINVAL;
        die("bad listen address", spec);
    }
    fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket", spec);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) < 0)
        die("bind", spec);
    if (listen(fd, 128) < 0)
        die("listen", spec);
    return fd;
}

static int do_connect(const char *spec)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int tries;
    if (parse_addr(spec, &ss, &len) < 0) {
        errno = EINVAL;
        die("bad connect address", spec);
    }
    for (tries = 0; tries < 500; tries++) {
        int fd = socket(ss.ss_family, SOCK_STREAM, 0);
        if (fd < 0)
            die("socket", spec);
        if (connect(fd, (struct sockaddr *)&ss, len) == 0)
            return fd;
        close(fd);
        usleep(10000);
    }
    die("connect", spec);
    return -1;
}

static void on_term(int sig)
{
    (void)sig;
    got_term = 1;
}

static void on_chld(int sig)
{
    int saved = errno;
    (void)sig;
    if (reap_children)
        while (waitpid(-1, NULL, WNOHANG) > 0)
            child_exited = 1;
    errno = saved;
}

/* fork + exec the child described by spec file `file`; returns once the exec happened. */
static void spawn_child(const char *file, int *lfds, int nl, int inherit, const char *ready)
{
    struct spec cs;
    int pfd[2], i;
    pid_t pid;
    char buf[1];
    ssize_t r;

    read_spec(file, &cs);
    if (cs.nargs == 0) {
        errno = EINVAL;
        die("child spec without arg= lines", file);
    }
    if (pipe2(pfd, O_CLOEXEC) < 0)
        die("pipe", NULL);
    pid = fork();
    if (pid < 0)
        die("fork", NULL);
    if (pid == 0) {
        sigset_t none;
        close(pfd[0]);
        if (!inherit)
            for (i = 0; i < nl; i++)
                close(lfds[i]);
        signal(SIGTERM, SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setenv("STANDIN_SPEC", file, 1);
        if (cs.cwd && chdir(cs.cwd) < 0)
            die("chdir", cs.cwd);
        if (cs.gid >= 0) {
            if (setgroups(0, NULL) < 0 && errno != EPERM)
                die("setgroups", NULL);
            if (setgid((gid_t)cs.gid) < 0)
                die("setgid", NULL);
        }
        if (cs.uid >= 0 && setuid((uid_t)cs.uid) < 0)
            die("setuid", NULL);
        execv(cs.path ? cs.path : self_path, cs.args);
        {
            char c = 1;
            if (write(pfd[1], &c, 1) < 0) { /* nothing to do */ }
        }
        die("execv", cs.path ? cs.path : self_path);
    }
    close(pfd[1]);
    do
        r = read(pfd[0], buf, 1);
    while (r < 0 && errno == EINTR);
    close(pfd[0]);
    if (r > 0) {
        errno = ENOEXEC;
        die("child exec failed", file);
    }
    /* a real program cannot report; do it for it */
    if (cs.path)
        write_ready(ready ? ready : cs.ready, cs.id, pid);
}

/* term=catch, onterm=, respawn=: wait for SIGTERM and SIGCHLD without a lost wake-up,
 * start the onterm= children on the first SIGTERM (then exit after delay:MS if given),
 * and fork the first child= again whenever a child exits (respawn=1). Never returns. */
static void events(struct spec *sp, int *lfds)
{
    sigset_t block, old;
    int i, term_done = 0;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, &old);
    for (;;) {
        while (!(got_term && !term_done) && !child_exited)
            sigsuspend(&old);
        if (got_term && !term_done) {
            term_done = 1;
            for (i = 0; i < sp->nonterm; i++)
                spawn_child(sp->onterm[i], lfds, sp->nlisten, sp->inherit, sp->ready);
            if (sp->term && !strncmp(sp->term, "delay:", 6)) {
                long ms = atol(sp->term + 6);
                struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
                while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                    ;
                _exit(0);
            }
        }
        if (child_exited) {
            child_exited = 0;
            if (sp->respawn && sp->nchild)
                spawn_child(sp->child[0], lfds, sp->nlisten, sp->inherit, sp->ready);
        }
    }
}

int main(int argc, char **argv)
{
    const char *file = getenv("STANDIN_SPEC");
    struct spec sp;
    int lfds[MAXV], cfds[MAXV], i;
    ssize_t n;
    struct sigaction sa;

    if (argc > 0 && argv[0][0]) {
        const char *base = strrchr(argv[0], '/');
        char comm[16];
        snprintf(comm, sizeof comm, "%s", base && base[1] ? base + 1 : argv[0]);
        prctl(PR_SET_NAME, comm, 0, 0, 0);
    }
    n = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
    if (n < 0)
        die("readlink /proc/self/exe", NULL);
    self_path[n] = 0;
    if (!file) {
        /* plain sleeper */
        for (;;)
            pause();
    }
    read_spec(file, &sp);
    if (sp.comm)
        prctl(PR_SET_NAME, sp.comm, 0, 0, 0);
    if (sp.cwd && chdir(sp.cwd) < 0)
        die("chdir", sp.cwd);

    memset(&sa, 0, sizeof sa);
    if (sp.term && !strcmp(sp.term, "ignore")) {
        signal(SIGTERM, SIG_IGN);
    } else if (sp.term && (!strncmp(sp.term, "delay:", 6) || !strcmp(sp.term, "catch"))) {
        sa.sa_handler = on_term;
        sigaction(SIGTERM, &sa, NULL);
    }
    reap_children = sp.reap;
    if (sp.reap) {
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_chld;
        sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
        sigaction(SIGCHLD, &sa, NULL);
    }

    for (i = 0; i < sp.nlisten; i++)
        lfds[i] = do_listen(sp.listen[i]);
    for (i = 0; i < sp.nconnect; i++)
        cfds[i] = do_connect(sp.connect[i]);
    (void)cfds;
    for (i = 0; i < sp.nchild; i++)
        spawn_child(sp.child[i], lfds, sp.nlisten, sp.inherit, sp.ready);
    write_ready(sp.ready, sp.id, getpid());
    if (sp.exit_now)
        _exit(0);
    if (sp.nonterm || sp.respawn || (sp.term && !strcmp(sp.term, "catch")))
        events(&sp, lfds);

    if (sp.http && sp.nlisten) {
        struct pollfd pfds[MAXV];
        char req[4096], resp[256];
        for (i = 0; i < sp.nlisten; i++) {
            pfds[i].fd = lfds[i];
            pfds[i].events = POLLIN;
        }
        snprintf(resp, sizeof resp, "HTTP/1.0 %d Stand-in\r\nContent-Type: text/plain\r\n"
                 "Content-Length: 3\r\nConnection: close\r\n\r\nok\n", sp.http);
        while (!got_term) {
            if (poll(pfds, (nfds_t)sp.nlisten, 100) <= 0)
                continue;
            for (i = 0; i < sp.nlisten; i++) {
                int c;
                struct pollfd cp;
                if (!(pfds[i].revents & POLLIN))
                    continue;
                c = accept(lfds[i], NULL, NULL);
                if (c < 0)
                    continue;
                cp.fd = c;
                cp.events = POLLIN;
                if (poll(&cp, 1, 1000) > 0 && read(c, req, sizeof req) < 0) { /* ignore */ }
                if (write(c, resp, strlen(resp)) < 0) { /* ignore */ }
                close(c);
            }
        }
    }
    if (sp.term && !strncmp(sp.term, "delay:", 6)) {
        sigset_t block, old;
        sigemptyset(&block);
        sigaddset(&block, SIGTERM);
        sigprocmask(SIG_BLOCK, &block, &old);
        while (!got_term)
            sigsuspend(&old);
    }
    for (;;) {
        if (got_term) {
            long ms = atol(sp.term + 6);
            struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
            while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
            _exit(0);
        }
        pause();
    }
}
