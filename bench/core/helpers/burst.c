/* burst: the child for the zombie-burst benchmark.
 *
 * Reads one-byte commands on stdin and answers with one 8-byte record (int64,
 * native endian) on stdout:
 *
 *   's'  spawn: fork a middle process that forks N grandchildren and exits at
 *        once, so the N are orphans, re-parented to the init (PID 1). Each one
 *        blocks reading a pipe whose only write end this process holds. The
 *        answer is how many grandchildren were forked.
 *   'g'  go: take CLOCK_MONOTONIC (ns), close that write end, answer the time.
 *        Every grandchild reads EOF and exits at that moment: N zombies at once,
 *        all the init's to reap.
 *
 * A first record of 0 says "ready". EOF on stdin ends it. The grandchildren close stdin and stdout first, so
 * they hold none of the benchmark's pipes.
 *
 * Built by bench/core (prepare.py) at benchmark time: gcc -O2 -o burst burst.c
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void answer(int64_t value) {
    if (write(1, &value, sizeof value) != sizeof value) _exit(3);
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 2000;
    int trigger = -1;
    char cmd;

    signal(SIGPIPE, SIG_DFL);
    answer(0);
    while (read(0, &cmd, 1) == 1) {
        if (cmd == 's' && trigger < 0) {
            int p[2], counts[2], status;
            int64_t forked = 0;
            if (pipe(p) != 0 || pipe(counts) != 0) _exit(4);
            pid_t middle = fork();
            if (middle < 0) _exit(4);
            if (middle == 0) {
                int made = 0;
                close(p[1]);
                close(counts[0]);
                for (int i = 0; i < n; i++) {
                    pid_t g = fork();
                    if (g == 0) {
                        char c;
                        close(0);
                        close(1);
                        close(counts[1]);
                        while (read(p[0], &c, 1) > 0) {}
                        _exit(0);
                    }
                    if (g < 0) break;
                    made++;
                }
                if (write(counts[1], &made, sizeof made) != sizeof made) _exit(5);
                _exit(0); /* the grandchildren are orphans now */
            }
            close(p[0]);
            close(counts[1]);
            int made = 0;
            if (read(counts[0], &made, sizeof made) != sizeof made) made = -1;
            close(counts[0]);
            waitpid(middle, &status, 0);
            trigger = p[1];
            forked = made;
            answer(forked);
        } else if (cmd == 'g' && trigger >= 0) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            close(trigger);
            trigger = -1;
            answer((int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec);
        } else if (cmd != '\n') {
            answer(-1);
        }
    }
    return 0;
}
