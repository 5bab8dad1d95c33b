/* SPDX-License-Identifier: MIT */
/*
 * fuzz_ops.c - libFuzzer target: the input bytes drive a sequence of pm_*
 * calls (malloc, calloc, realloc, free, memalign, posix_memalign,
 * aligned_alloc, usable_size, trim) on 64 slots. Every block carries a
 * pattern that is checked before it is resized or freed, and pm_check_heap()
 * must return 0 after every operation; any mismatch calls abort() so that
 * libFuzzer records the input. Everything is freed at the end of each input.
 * Build: make fuzz-ops (clang, -fsanitize=fuzzer,address).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pmalloc.h"

enum { SLOTS = 64 };

typedef struct slot {
    unsigned char *p;
    size_t n;
    uint8_t tag;
} slot_t;

typedef struct reader {
    const uint8_t *d;
    size_t left;
} reader_t;

static uint8_t next_byte(reader_t *r)
{
    if (r->left == 0)
        return 0;
    r->left--;
    return *r->d++;
}

/* Sizes: one byte picks a scale, two more the value, so that small sizes
 * dominate but every class up to a few MiB is reachable. */
static size_t next_size(reader_t *r)
{
    uint8_t scale = next_byte(r);
    size_t v = (size_t)next_byte(r) | (size_t)next_byte(r) << 8;
    switch (scale % 8) {
    case 0: case 1: case 2: return v % 257;
    case 3: case 4: return v % 4097;
    case 5: return v;                 /* .. 64 KiB  */
    case 6: return v << 2;            /* .. 256 KiB */
    default: return (v << 6) % (4u << 20); /* .. 4 MiB */
    }
}

static size_t next_align(reader_t *r)
{
    return (size_t)1 << (next_byte(r) % 21); /* 1 .. 1 MiB */
}

static void die(const char *what, size_t a, size_t b)
{
    fprintf(stderr, "fuzz_ops: %s (%zu, %zu)\n", what, a, b);
    abort();
}

static void fill(slot_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        s->p[i] = (uint8_t)(s->tag + i * 7);
}

static void verify(const slot_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s->p[i] != (uint8_t)(s->tag + i * 7))
            die("block contents changed", s->n, i);
}

static void check_heap(void)
{
    if (pm_check_heap() != 0)
        die("pm_check_heap failed", 0, 0);
}

static void place(slot_t *s, void *p, size_t n, size_t align, uint8_t tag)
{
    if (p == NULL)
        die("allocation failed", n, align);
    if ((uintptr_t)p % align != 0 || (uintptr_t)p % 16 != 0)
        die("misaligned result", (uintptr_t)p, align);
    if (pm_malloc_usable_size(p) < n)
        die("usable size too small", pm_malloc_usable_size(p), n);
    s->p = p;
    s->n = n;
    s->tag = tag;
    fill(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    slot_t slots[SLOTS];
    reader_t r = { data, size };
    memset(slots, 0, sizeof slots);
    while (r.left > 0) {
        uint8_t op = next_byte(&r);
        slot_t *s = &slots[next_byte(&r) % SLOTS];
        uint8_t tag = op ^ (uint8_t)r.left;
        if (s->p != NULL)
            verify(s, s->n);
        switch (op % 10) {
        case 0: case 1: { /* malloc */
            size_t n = next_size(&r);
            pm_free(s->p);
            place(s, pm_malloc(n), n, 16, tag);
            break;
        }
        case 2: { /* calloc */
            size_t k = 1 + next_byte(&r) % 8, n = next_size(&r) / k;
            pm_free(s->p);
            unsigned char *p = pm_calloc(k, n);
            for (size_t i = 0; p != NULL && i < k * n; i++)
                if (p[i] != 0)
                    die("calloc not zero", k * n, i);
            place(s, p, k * n, 16, tag);
            break;
        }
        case 3: case 4: { /* realloc, including NULL and 0 */
            size_t n = next_size(&r);
            if (op & 0x80)
                n = 0;
            unsigned char *q = pm_realloc(s->p, n);
            if (n == 0 && s->p != NULL) {
                if (q != NULL)
                    die("realloc(p, 0) returned a block", 0, 0);
                s->p = NULL;
                break;
            }
            if (q == NULL)
                die("realloc failed", s->n, n);
            if (s->p != NULL) {
                slot_t moved = { q, s->n < n ? s->n : n, s->tag };
                verify(&moved, moved.n);
            }
            place(s, q, n, 16, s->p != NULL ? s->tag : tag);
            break;
        }
        case 5: /* free */
            pm_free(s->p);
            s->p = NULL;
            break;
        case 6: { /* memalign / aligned_alloc */
            size_t a = next_align(&r), n = next_size(&r);
            pm_free(s->p);
            void *p = (op & 0x40) ? pm_aligned_alloc(a, n) : pm_memalign(a, n);
            place(s, p, n, a, tag);
            break;
        }
        case 7: { /* posix_memalign */
            size_t a = next_align(&r), n = next_size(&r);
            pm_free(s->p);
            s->p = NULL;
            void *p = NULL;
            int rc = pm_posix_memalign(&p, a, n);
            if (a < sizeof(void *)) {
                if (rc == 0 || p != NULL)
                    die("posix_memalign accepted a bad alignment", a, n);
                break;
            }
            if (rc != 0)
                die("posix_memalign failed", a, n);
            place(s, p, n, a, tag);
            break;
        }
        case 8: /* the whole usable size is writable */
            if (s->p != NULL) {
                size_t u = pm_malloc_usable_size(s->p);
                memset(s->p, 0xEE, u);
                check_heap();
                fill(s);
            }
            break;
        default:
            if (op & 0x80)
                pm_malloc_trim(next_byte(&r) * (size_t)4096);
            else
                (void)pm_mallinfo();
            break;
        }
        check_heap();
    }
    for (int i = 0; i < SLOTS; i++) {
        if (slots[i].p != NULL) {
            verify(&slots[i], slots[i].n);
            pm_free(slots[i].p);
        }
    }
    check_heap();
    return 0;
}
