/* SPDX-License-Identifier: MIT */
/*
 * test_dlclose.c - libpmalloc loaded with dlopen and closed again while a
 * thread that used it still runs. This binary does not link the library:
 * it loads $PM_TEST_BUILDDIR/.libs/libpmalloc.so.0. The library is built
 * with -z nodelete, so dlclose leaves it mapped: the thread's exit then
 * still finds its cache's destructor (it faulted in unmapped code), and a
 * fork still finds the fork handlers.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

typedef void *(*pm_malloc_fn)(size_t);
typedef void (*pm_free_fn)(void *);

static pm_malloc_fn lib_malloc;
static pm_free_fn lib_free;
static sem_t used, closed;

static void *user_thread(void *arg)
{
    (void)arg;
    void *p = lib_malloc(64);
    lib_free(p);
    sem_post(&used);
    sem_wait(&closed);
    return p; /* its exit runs the cache's destructor */
}

static void test_thread_exit_after_dlclose(void **state)
{
    (void)state;
    const char *dir = getenv("PM_TEST_BUILDDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/.libs/libpmalloc.so.0", dir ? dir : ".");
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        print_message("no %s (%s)\n", path, dlerror());
        skip();
    }
    lib_malloc = (pm_malloc_fn)dlsym(h, "pm_malloc");
    lib_free = (pm_free_fn)dlsym(h, "pm_free");
    assert_non_null(lib_malloc);
    assert_non_null(lib_free);
    assert_int_equal(sem_init(&used, 0, 0), 0);
    assert_int_equal(sem_init(&closed, 0, 0), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, user_thread, NULL), 0);
    sem_wait(&used);
    assert_int_equal(dlclose(h), 0);
    sem_post(&closed);
    void *r;
    assert_int_equal(pthread_join(t, &r), 0); /* faulted before the join */
    assert_non_null(r);
    /* The fork handlers are still there, and still code. */
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    assert_true(pid > 0);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thread_exit_after_dlclose),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
