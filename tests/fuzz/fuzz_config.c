/* SPDX-License-Identifier: MIT */
/*
 * fuzz_config.c - libFuzzer target for the configuration layer: the input
 * is parsed as an ini file (the inih reader, section and key handling,
 * every diagnostic formatted but written nowhere), each of its lines as a
 * value of every tunable (a value that parses must format and parse back to
 * itself), and the settings are dumped as text and JSON to /dev/null.
 * Build and run: make fuzz (FUZZ_SECONDS=60).
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "options.h"
#include "pmalloc.h"

/* Why a stub: the fuzzer links only the config layer, not the allocator;
 * pm_config_dump (unused here) is its only caller. */
int pm_init(void)
{
    return 0;
}

static void fuzz_values(const char *line, size_t len)
{
    char text[96], why[160], buf[32];
    if (len >= sizeof text)
        len = sizeof text - 1;
    memcpy(text, line, len);
    text[len] = '\0';
    for (int id = 0; id < PM_OPT_COUNT; id++) {
        size_t v, back;
        if (_pm_opt_parse(id, text, &v, why, sizeof why) != PM_PARSE_OK)
            continue;
        _pm_opt_format(id, v, buf, sizeof buf);
        if (_pm_opt_parse(id, buf, &back, why, sizeof why) != PM_PARSE_OK || back != v)
            __builtin_trap(); /* a value pmalloc prints must read back the same */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int null_fd = -1;
    if (null_fd < 0)
        null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    _pm_config_diag_fd = -1;   /* format every diagnostic, write none */
    _pm_config_check_mode = 1; /* on_bad_config=abort in the input must not abort */
    _pm_config_program = "fuzz";
    _pm_options_reset();
    _pm_config_parse_text("fuzz.ini", (const char *)data, size, 1);
    _pm_config_parse_text("fuzz.ini", (const char *)data, size, 0);
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        if (!memchr(p, '\0', len))
            fuzz_values(p, len);
        p += len + 1;
    }
    _pm_config_dump_fd(null_fd, PM_DUMP_TEXT);
    _pm_config_dump_fd(null_fd, PM_DUMP_JSON);
    return 0;
}
