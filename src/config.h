/* SPDX-License-Identifier: MIT */
/*
 * config.h - the configuration layer's internal interface, shared by
 * options.c (values, environment, pm_mallopt, the bad-config policy),
 * config.c (the ini file, the load, the dump), tools/pmalloc-config, the
 * config tests and the fuzzer. Nothing here allocates.
 */
#ifndef PM_CONFIG_H
#define PM_CONFIG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "build-config.h"

/* The directory of the system-wide pmalloc.ini: configure's sysconfdir
 * (build-config.h), unless the build says otherwise (the fuzzers). */
#ifndef PM_SYSCONFDIR
#define PM_SYSCONFDIR PM_CONFIGURED_SYSCONFDIR
#endif

/* Largest ini file read (bytes); a larger one is reported and ignored. */
#define PM_CONFIG_FILE_MAX (64 * 1024)

/* _pm_opt_parse results. */
enum pm_parse_result {
    PM_PARSE_OK = 0,
    PM_PARSE_BAD = 1,   /* not a value of the kind; why says what is wrong */
    PM_PARSE_RANGE = 2, /* a number outside [min, max] (or negative, or overflowing) */
};

/* Parse text as a value of option id: sizes take K/M/G (KiB/MiB/GiB), counts
 * take plain numbers, 0x hex is accepted, booleans take 0/1, yes/no,
 * true/false, on/off, on_bad_config takes warn/quiet/abort (or 0/1/2). The
 * whole text must parse. On PM_PARSE_BAD, why (cap bytes) names the problem. */
int _pm_opt_parse(int id, const char *text, size_t *out, char *why, size_t cap);
/* Write value v of option id as people read it (128K, warn). Returns length. */
size_t _pm_opt_format(int id, size_t v, char *buf, size_t cap);
/* Option id for an ini key / environment variable name, or -1. */
int _pm_opt_find_key(const char *key);
int _pm_opt_find_env(const char *name);
/* The closest known ini key to key, or NULL if none is close. */
const char *_pm_opt_suggest_key(const char *key);
/* Copy text into buf for a diagnostic: unprintable bytes become \xNN, long
 * text is cut with "...". Returns buf. */
char *_pm_config_quote(const char *text, size_t len, char *buf, size_t cap);
/* The same, cut after cut bytes (SIZE_MAX: never; cap still bounds it). */
char *_pm_config_escape(const char *text, size_t len, size_t cut, char *buf, size_t cap);

/* Store a value for option id from src (line: ini line for PM_SRC_FILE);
 * what was in force before, unless a default, becomes the "overrides". */
void _pm_opt_store(int id, size_t value, int src, uint32_t line);
/* "default 16", "4 from app.ini:3": the value in force and where from. */
size_t _pm_opt_using(int id, char *buf, size_t cap);

/* One configuration problem: counted; printed as "pmalloc: ..." on the
 * diagnostics fd unless on_bad_config is quiet (or hide is set); abort()
 * after printing when on_bad_config is abort (never in check mode). */
void _pm_config_report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define PM_REPORT_HIDE 1    /* count it, do not print it (too many already)  */
#define PM_REPORT_NOTE 2    /* print it unless quiet, do not count, no abort  */
#define PM_REPORT_CALL 4    /* a program's call: count, print, never abort    */
void _pm_config_vreport(int flags, const char *fmt, va_list ap);
/* on_bad_config in force while loading (-1: use the setting). */
extern int _pm_config_mode;
/* Environment layer: PM_ON_BAD_CONFIG first (it governs what follows),
 * then every PM_* tunable, then a "did you mean" for misspelt PM_* names. */
int _pm_options_env_mode(void);
void _pm_options_env(int mode_from_env);
void _pm_options_env_typos(void);
/* Is one of our variables (PM_CONFIG, a tunable's) set? */
bool _pm_options_env_any(void);

/* Knobs for the tool, the tests and the fuzzer. */
extern int _pm_config_diag_fd;     /* where diagnostics go (2); -1: nowhere   */
extern int _pm_config_check_mode;  /* 1: print every problem, never abort    */
extern int _pm_config_no_print;    /* 1: ignore print_config at load         */
extern int _pm_config_secure;      /* 1: load as a set-user-ID program would */
extern const char *_pm_config_program; /* program name for [program:NAME]
                                        * sections (NULL: the real one)      */

/* Parse ini text (len bytes, NUL bytes rejected) named name in diagnostics.
 * apply: 1 stores [pmalloc] / matching [program:NAME] values as PM_SRC_FILE;
 * 0 only validates every section (pmalloc-config --check). */
void _pm_config_parse_text(const char *name, const char *text, size_t len, int apply);
/* Validate one file as pmalloc-config --check does; returns the number of
 * problems (an unreadable file counts as one). */
unsigned _pm_config_check_file(const char *path);
/* "default", "FILE:LINE", "env PM_X" or "pm_mallopt". */
size_t _pm_config_source_text(int id, int src, uint32_t line, char *buf, size_t cap);
/* The ini file the settings came from, or NULL. */
const char *_pm_config_file(void);
/* pm_config_dump without pm_init (used at init for print_config). */
int _pm_config_dump_fd(int fd, int format);
/* errno as text without strerror (which may allocate or lock). */
const char *_pm_config_errno_text(int err, char *buf, size_t cap);

#endif /* PM_CONFIG_H */
