/* SPDX-License-Identifier: MIT */
/*
 * bench-time.c - the benchmark runner's stopwatch: run a command, then write
 * its wall time and peak resident set size to a file, like /usr/bin/time -f
 * but with microsecond resolution and nothing to install.
 *   bench-time [-t SECONDS] OUTFILE COMMAND [ARG...]
 * OUTFILE gets one line "wall_s maxrss_kib status"; status is the exit code,
 * or 128 + the signal number. bench-time exits with that status too (127 when
 * the command cannot be run). With -t, a command still running after SECONDS
 * is killed (SIGKILL) and the status is 124, as timeout(1) has it. The peak
 * RSS comes from wait4's rusage: it is the command's own, after exec.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t expired;

static void on_alarm(int sig)
{
    (void)sig;
    expired = 1;
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    struct sigaction sa;
    struct rusage ru;
    unsigned limit = 0;
    FILE *out;
    double t0, t1;
    pid_t pid;
    int st, code, arg = 1;

    if (argc > 2 && !strcmp(argv[1], "-t")) {
        limit = (unsigned)strtoul(argv[2], NULL, 10);
        arg = 3;
    }
    if (argc - arg < 2) {
        fprintf(stderr, "usage: bench-time [-t SECONDS] OUTFILE COMMAND [ARG...]\n");
        return 64;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;   /* no SA_RESTART: the alarm must interrupt wait4 */
    sigaction(SIGALRM, &sa, NULL);
    t0 = now();
    pid = fork();
    if (pid < 0) {
        perror("bench-time: fork");
        return 127;
    }
    if (pid == 0) {
        execvp(argv[arg + 1], argv + arg + 1);
        fprintf(stderr, "bench-time: %s: %s\n", argv[arg + 1], strerror(errno));
        _exit(127);
    }
    if (limit)
        alarm(limit);
    while (wait4(pid, &st, 0, &ru) < 0) {
        if (errno != EINTR) {
            perror("bench-time: wait4");
            return 127;
        }
        if (expired)
            kill(pid, SIGKILL);
    }
    t1 = now();
    code = expired ? 124 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    out = fopen(argv[arg], "w");
    if (!out || fprintf(out, "%.6f %ld %d\n", t1 - t0, ru.ru_maxrss, code) < 0
        || fclose(out) != 0) {
        perror("bench-time: writing the result");
        return 127;
    }
    return code;
}
