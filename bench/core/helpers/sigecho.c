/* sigecho: the child for the forwarding-latency benchmark.
 *
 * Writes one 8-byte record (int64, native endian) to stdout per SIGUSR1: the
 * CLOCK_MONOTONIC time in nanoseconds taken as the first thing in the handler.
 * CLOCK_MONOTONIC is one clock for every PID namespace, so the sender outside
 * the namespace can subtract the time it took just before kill(). A record of
 * 0 says "handler installed, ready". Otherwise it sleeps, blocked reading
 * stdin (this is also the sleeping child of the idle and RSS measurements),
 * and exits at EOF: if the benchmark dies, so does its child, and the init.
 *
 * Built by bench/core (prepare.py) at benchmark time: gcc -O2 -o sigecho sigecho.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

static void on_usr1(int sig) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int saved = errno;
    int64_t ns = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    (void)sig;
    if (write(1, &ns, sizeof ns) != sizeof ns) _exit(3);
    errno = saved;
}

int main(void) {
    struct sigaction sa = {0};
    sigset_t none;
    int64_t ready = 0;

    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGUSR1, &sa, NULL) != 0) return 2;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL); /* whatever the init left blocked */
    if (write(1, &ready, sizeof ready) != sizeof ready) return 2;
    char byte;
    for (;;) {
        ssize_t got = read(0, &byte, 1); /* SA_RESTART: a signal does not end it */
        if (got == 0) return 0;
        if (got < 0 && errno != EINTR) return 1;
    }
}
