/* standin: a stand-in process for recording process tables. It keeps whatever argv it was
 * exec'd with (so `os.execv("/path/standin", ["uvicorn", "main:app", "--reload"])` shows up in
 * ps as `uvicorn main:app --reload`) and sleeps. Build: cc -O2 -o standin standin.c
 * Environment:
 *   STANDIN_COMM=NAME     set the kernel comm (prctl PR_SET_NAME, 15 bytes max)
 *   STANDIN_ZERO_ARGV=1   overwrite the whole argv area with NUL bytes (ps then shows [comm])
 *   STANDIN_TITLE=TEXT    write TEXT over the argv area and NUL the rest, as node's
 *                         process.title does (npm shows as `npm run dev`)
 *   STANDIN_SECONDS=N     sleep N seconds (default 600)
 * Only ever run inside a throw-away PID namespace (/work/shared/sandbox). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>

int main(int argc, char **argv)
{
    const char *comm = getenv("STANDIN_COMM");
    const char *secs = getenv("STANDIN_SECONDS");
    unsigned left = secs ? (unsigned)atoi(secs) : 600;

    if (comm)
        prctl(PR_SET_NAME, comm, 0, 0, 0);
    if ((getenv("STANDIN_ZERO_ARGV") || getenv("STANDIN_TITLE")) && argc > 0) {
        const char *title = getenv("STANDIN_TITLE");
        char *end = argv[argc - 1] + strlen(argv[argc - 1]);
        size_t room = (size_t)(end - argv[0]);
        memset(argv[0], 0, room);
        if (title)
            memcpy(argv[0], title, strlen(title) < room ? strlen(title) : room);
    }
    while (left)
        left = sleep(left);
    return 0;
}
