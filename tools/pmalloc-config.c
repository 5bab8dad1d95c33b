/* SPDX-License-Identifier: MIT */
/*
 * pmalloc-config - look at pmalloc's configuration from the shell: check an
 * ini file (--check), show the settings a program started here would get
 * (--show), print the README's table of tunables (--table) and the man
 * pages' (--man-table), say its version (--version). It links the
 * allocator's internals (libpmcore) so that it parses exactly as pm_init
 * does, but allocates with the C library: it never calls pm_malloc.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "options.h"
#include "pmalloc.h"

static void usage(FILE *f)
{
    fputs("Usage: pmalloc-config --check FILE   validate an ini file; exit 1 on any problem\n"
          "       pmalloc-config --show [--json] [--program NAME]\n"
          "                                    the settings a program started here gets\n"
          "                                    (PM_CONFIG / " PM_SYSCONFDIR "/pmalloc.ini,\n"
          "                                    PM_* variables); NAME picks [program:NAME]\n"
          "       pmalloc-config --table       the tunables as a markdown table\n"
          "       pmalloc-config --man-table   the tunables as man page text (roff)\n"
          "       pmalloc-config --version     the version of pmalloc this tool is from\n"
          "       pmalloc-config --help\n",
          f);
}

/* The mallopt parameter names, stringified from the table's own column. */
static const char *const param_names[PM_OPT_COUNT] = {
#define PM_X_PARAM(id, env, key, param, def, min, max, kind, help) [PM_OPT_##id] = #param,
    PM_OPTIONS(PM_X_PARAM)
#undef PM_X_PARAM
};

/* Option id's default and range as the tables write them. */
static void describe(int id, char *def, char *range)
{
    const pm_opt_desc_t *d = &_pm_opt_desc[id];
    char lo[32], hi[32];
    if (d->def == PM_DEFAULT_AUTO)
        snprintf(def, 32, "auto");
    else
        _pm_opt_format(id, d->def, def, 32);
    _pm_opt_format(id, d->min, lo, sizeof lo);
    _pm_opt_format(id, d->max, hi, sizeof hi);
    if (d->kind == PM_KIND_ENUM)
        snprintf(range, 80, "warn, quiet, abort");
    else if (d->kind == PM_KIND_BOOL)
        snprintf(range, 80, "0 or 1");
    else
        snprintf(range, 80, "%s .. %s%s", lo, hi, d->kind == PM_KIND_SIZE ? " bytes" : "");
}

static void print_table(void)
{
    puts("| ini key | environment | pm_mallopt | default | range | meaning |");
    puts("|---|---|---|---|---|---|");
    for (int id = 0; id < PM_OPT_COUNT; id++) {
        const pm_opt_desc_t *d = &_pm_opt_desc[id];
        char def[32], range[80];
        describe(id, def, range);
        printf("| `%s` | `%s` | `%s` (%d) | %s | %s | %s |\n", d->key, d->env, param_names[id],
               d->param, def, range, d->help);
    }
}

/* text for roff: a backslash and a hyphen escaped, and a leading dot or
 * quote, which would make a line a request, made plain text with \&. */
static void roff(const char *text)
{
    if (*text == '.' || *text == '\'')
        fputs("\\&", stdout);
    for (; *text; text++) {
        if (*text == '\\')
            fputs("\\e", stdout);
        else if (*text == '-')
            fputs("\\-", stdout);
        else
            putchar(*text);
    }
}

/* The same rows as man page text: one tagged paragraph per setting, for the
 * man pages (man/pmalloc.3.in and the others take this output). */
static void print_man_table(void)
{
    /* Why no hyphenation or justification: the names are what a reader
     * types, and a long one must not be split or padded. */
    fputs(".nh\n.ad l\n", stdout);
    for (int id = 0; id < PM_OPT_COUNT; id++) {
        const pm_opt_desc_t *d = &_pm_opt_desc[id];
        char def[32], range[80], param[48];
        describe(id, def, range);
        snprintf(param, sizeof param, "%d", d->param);
        fputs(".TP\n.BR ", stdout);
        roff(d->key);
        fputs(" \" (", stdout);
        roff(d->env);
        fputs(", pm_mallopt \" ", stdout);
        roff(param_names[id]);
        fputs(" \" = ", stdout);
        roff(param);
        fputs(")\"\n", stdout);
        roff(d->help);
        fputs(".\n.br\nDefault ", stdout);
        roff(def);
        fputs("; range ", stdout);
        roff(range);
        fputs(".\n", stdout);
    }
    fputs(".ad b\n.hy\n", stdout);
}

int main(int argc, char **argv)
{
    const char *check = NULL, *program = NULL;
    int show = 0, table = 0, json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--check") == 0 && i + 1 < argc) {
            check = argv[++i];
        } else if (strcmp(argv[i], "--program") == 0 && i + 1 < argc) {
            program = argv[++i];
        } else if (strcmp(argv[i], "--show") == 0) {
            show = 1;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "--table") == 0) {
            table = 1;
        } else if (strcmp(argv[i], "--man-table") == 0) {
            table = 2;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("pmalloc-config %s\n", PM_VERSION_STRING);
            return 0;
        } else {
            fprintf(stderr, "pmalloc-config: unknown or incomplete argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!!check + show + !!table != 1) {
        usage(stderr);
        return 2;
    }
    /* Why: a tool reports problems and goes on; it must never abort because
     * of on_bad_config=abort, nor print the dump twice for print_config. */
    _pm_config_check_mode = 1;
    _pm_config_no_print = 1;
    if (table) {
        if (table == 2)
            print_man_table();
        else
            print_table();
        return 0;
    }
    if (check) {
        unsigned n = _pm_config_check_file(check);
        if (n)
            fprintf(stderr, "pmalloc-config: %s: %u problem%s\n", check, n, n == 1 ? "" : "s");
        else
            printf("pmalloc-config: %s: no problems\n", check);
        return n ? 1 : 0;
    }
    /* Why "": without --program no [program:NAME] section applies, rather
     * than the one that names this tool. */
    _pm_config_program = program ? program : "";
    _pm_options_load();
    fflush(stdout);
    if (_pm_config_dump_fd(1, json ? PM_DUMP_JSON : PM_DUMP_TEXT) != 0) {
        perror("pmalloc-config: writing the settings");
        return 1;
    }
    return _pm_config_error_count() ? 1 : 0;
}
