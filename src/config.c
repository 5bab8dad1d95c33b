/* SPDX-License-Identifier: MIT */
/*
 * config.c - where the settings come from and how to see them: the load at
 * init (defaults, then the ini file through inih, then the environment),
 * the ini file's checks and diagnostics, and pm_config_dump (text, JSON).
 * Runs inside pm_init: no malloc, no stdio, no getenv, no strerror; the
 * file is read with open/read into a static buffer.
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "diag.h"
#include "options.h"
#include "os.h"
#include "pmalloc.h"

/* Sections remembered for "set twice"; more than this are still parsed. */
#define CONFIG_MAX_SECTIONS 16
/* Problems printed per file; the rest are counted and summed up in a note. */
#define CONFIG_MAX_SHOWN 20

/* Why weak: only Debian's inih exports ini_use_stack. When a program has
 * turned the stack line buffer off, inih would malloc inside pm_init. */
extern bool ini_use_stack __attribute__((weak));

enum sect_kind {
    SECT_NONE,    /* no header yet: keys here are an error              */
    SECT_PMALLOC, /* [pmalloc]                                          */
    SECT_MINE,    /* [program:NAME] for this program (load only)       */
    SECT_OTHER,   /* [program:NAME] for another program: validated only */
    SECT_IGNORED, /* unknown or broken header, already reported         */
};

typedef struct config_sect {
    const char *name; /* into the text */
    size_t len;
    uint32_t line[PM_OPT_COUNT]; /* where each key was last set (0: not) */
    size_t value[PM_OPT_COUNT];
    int kind; /* SECT_PMALLOC, SECT_MINE or SECT_OTHER */
} config_sect_t;

typedef struct config_ini {
    const char *name, *text;
    size_t len, pos;
    uint32_t line;
    int apply;
    const char *prog;
    int kind;
    config_sect_t *sect;
    const char *hdr; /* header of the current section, for "has no keys" */
    size_t hdr_len;
    uint32_t hdr_line;
    unsigned hdr_keys;
    uint32_t first_syntax;
    unsigned shown;
    unsigned nsects;
    config_sect_t sects[CONFIG_MAX_SECTIONS];
} config_ini_t;

static char file_buf[PM_CONFIG_FILE_MAX + 1];
static char file_path[4096];
static char prog_buf[256];
static char path_esc[1024]; /* a path or name as diagnostics show it (esc) */
static int env_mode_set;
/* Why static: pm_init may run on a small thread stack; the parse runs once,
 * in pm_init's pthread_once (or in the single-threaded tool and fuzzer). */
static config_ini_t ini_ctx;

const char *_pm_config_errno_text(int err, char *buf, size_t cap)
{
    static const struct {
        int err;
        const char *text;
    } texts[] = {
        {ENOENT, "No such file or directory"}, {EACCES, "Permission denied"},
        {EISDIR, "Is a directory"}, {ENOTDIR, "Not a directory"},
        {EIO, "Input/output error"}, {ELOOP, "Too many levels of symbolic links"},
        {ENAMETOOLONG, "File name too long"}, {EMFILE, "Too many open files"},
        {ENFILE, "Too many open files in system"}, {ENOMEM, "Cannot allocate memory"},
        {EFBIG, "File too large"}, {EPERM, "Operation not permitted"},
        {EINVAL, "Invalid argument"}, {ENXIO, "No such device or address"},
        {ENODEV, "No such device"}, {EAGAIN, "Resource temporarily unavailable"},
        {EINTR, "Interrupted system call"}, {EOVERFLOW, "Value too large for defined data type"},
        {EBADF, "Bad file descriptor"}, {EFAULT, "Bad address"}, {ETXTBSY, "Text file busy"},
        {EROFS, "Read-only file system"}, {EWOULDBLOCK, "Resource temporarily unavailable"},
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++)
        if (texts[i].err == err)
            return texts[i].text;
    _pm_diag_format(buf, cap, "error %d", err);
    return buf;
}

/* A path or program name as diagnostics show it: every byte outside
 * printable ASCII as \xNN, uncut (escape sequences never reach a terminal). */
static const char *esc(const char *text, char *buf, size_t cap)
{
    return _pm_config_escape(text, strlen(text), SIZE_MAX, buf, cap);
}

const char *_pm_config_file(void)
{
    return file_path[0] ? file_path : NULL;
}

static bool load_secure; /* this load is a set-user-ID program's */

static const char *config_program(void)
{
    if (_pm_config_program)
        return _pm_config_program;
    /* Why the executable's own name when secure: argv[0] and the command
     * name are the caller's to choose (exec -a, a symlink), and would pick
     * the system file's [program:NAME] section. */
    if (load_secure)
        return _pm_os_exe_name(prog_buf, sizeof prog_buf) > 0 ? prog_buf : NULL;
    if (program_invocation_short_name && *program_invocation_short_name)
        return program_invocation_short_name;
    /* Why /proc: a static program or an early preload may run before libc
     * has set program_invocation_short_name. */
    ssize_t n = _pm_os_read_file("/proc/self/comm", prog_buf, sizeof prog_buf);
    if (n <= 0)
        return NULL;
    if (prog_buf[n - 1] == '\n')
        prog_buf[n - 1] = '\0';
    return prog_buf;
}

size_t _pm_config_source_text(int id, int src, uint32_t line, char *buf, size_t cap)
{
    switch (src) {
    case PM_SRC_FILE:
        return _pm_diag_format(buf, cap, "%s:%u",
                               file_path[0] ? esc(file_path, path_esc, sizeof path_esc) : "file",
                               line);
    case PM_SRC_ENV:
        return _pm_diag_format(buf, cap, "env %s", _pm_opt_desc[id].env);
    case PM_SRC_MALLOPT:
        return _pm_diag_format(buf, cap, "pm_mallopt");
    default:
        return _pm_diag_format(buf, cap, "default");
    }
}

/* ---- the ini file ------------------------------------------------------ */

static void ini_report(config_ini_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ini_report(config_ini_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    c->shown++;
    _pm_config_vreport(c->shown > CONFIG_MAX_SHOWN ? PM_REPORT_HIDE : 0, fmt, ap);
    va_end(ap);
}

static void ini_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void ini_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _pm_config_vreport(PM_REPORT_NOTE, fmt, ap);
    va_end(ap);
}

static int ini_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* inih's find_chars_or_comment: the first of chars, or an inline ';' that
 * follows white space, or the end. */
static const char *ini_find(const char *s, const char *e, const char *chars)
{
    int was_space = 0;
    for (; s < e && !strchr(chars, *s) && !(was_space && *s == ';'); s++)
        was_space = ini_space(*s);
    return s;
}

static void ini_end_section(config_ini_t *c)
{
    if ((c->kind == SECT_PMALLOC || c->kind == SECT_MINE || c->kind == SECT_OTHER) &&
        c->hdr_keys == 0) {
        char q[96];
        ini_report(c, "%s:%u: section [%s] has no keys", c->name, c->hdr_line,
                   _pm_config_quote(c->hdr, c->hdr_len, q, sizeof q));
    }
}

static void ini_section(config_ini_t *c, const char *name, size_t len)
{
    char q[96];
    ini_end_section(c);
    while (len && ini_space(*name))
        name++, len--;
    while (len && ini_space(name[len - 1]))
        len--;
    c->hdr = name;
    c->hdr_len = len;
    c->hdr_line = c->line;
    c->hdr_keys = 0;
    c->sect = NULL;
    _pm_config_quote(name, len, q, sizeof q);
    if (len == 7 && memcmp(name, "pmalloc", 7) == 0) {
        c->kind = SECT_PMALLOC;
    } else if (len >= 8 && memcmp(name, "program:", 8) == 0) {
        const char *p = name + 8;
        size_t pl = len - 8;
        while (pl && ini_space(*p))
            p++, pl--;
        if (pl == 0) {
            ini_report(c, "%s:%u: [%s] names no program; its keys are ignored", c->name,
                       c->line, q);
            c->kind = SECT_IGNORED;
            return;
        }
        int mine = c->apply && c->prog && strlen(c->prog) == pl && memcmp(c->prog, p, pl) == 0;
        c->kind = mine ? SECT_MINE : SECT_OTHER;
    } else {
        ini_report(c, "%s:%u: unknown section [%s] (use [pmalloc] or [program:NAME]); "
                   "its keys are ignored", c->name, c->line, q);
        c->kind = SECT_IGNORED;
        return;
    }
    /* Why by name: a section may be split in two; "set twice" spans both. */
    for (unsigned i = 0; i < c->nsects; i++)
        if (c->sects[i].len == len && memcmp(c->sects[i].name, name, len) == 0)
            c->sect = &c->sects[i];
    /* Why keep two slots: [pmalloc] and this program's section must always
     * get one (their values live there); other programs' only lose the
     * "set twice" check when there are very many of them. */
    unsigned room = c->kind == SECT_OTHER ? CONFIG_MAX_SECTIONS - 2 : CONFIG_MAX_SECTIONS;
    if (!c->sect && c->nsects < room) {
        c->sect = &c->sects[c->nsects++];
        memset(c->sect, 0, sizeof *c->sect);
        c->sect->name = name;
        c->sect->len = len;
        c->sect->kind = c->kind;
    }
}

/*
 * inih's reader. Why ini_parse_stream with our own reader rather than
 * ini_parse_string: Debian's inih gives the handler no line number, and
 * its string reader splits an over-long line into several "lines", which
 * shifts every later line number and parses the tail as a line of its own.
 * Here each call hands inih exactly one line of the text, so the count of
 * calls is the line inih is working on, and over-long lines are reported
 * and replaced by a blank line. The reader also
 * - strips leading white space: inih would take an indented line as the
 *   continuation of the previous value (configparser style), and pmalloc's
 *   values are single words, so indentation is only layout;
 * - classifies the line as inih will, to report every syntax error (inih
 *   returns only the first) and to record section names in full (inih
 *   keeps 50 bytes).
 */
static char *ini_read_line(char *str, int num, void *stream)
{
    config_ini_t *c = stream;
    if (c->pos >= c->len || num < 4)
        return NULL;
    /* A line ends at LF, CRLF or a lone CR: why CR too, files from old Mac
     * editors have nothing else, and read as one line their keys vanished. */
    const char *p = c->text + c->pos, *end = c->text + c->len, *e = p;
    while (e < end && *e != '\n' && *e != '\r')
        e++;
    c->pos = (size_t)(e - c->text);
    if (e < end)
        c->pos += *e == '\r' && e + 1 < end && e[1] == '\n' ? 2 : 1;
    c->line++;
    if (c->line == 1 && e - p >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3; /* why: a UTF-8 byte order mark, as editors on Windows write */
    while (p < e && ini_space(*p))
        p++;
    while (e > p && ini_space(e[-1]))
        e--;
    size_t len = (size_t)(e - p);
    str[0] = '\0';
    /* Why num - 3: inih documents its limit as three more than the longest
     * line (room for '\r', '\n' and '\0'). */
    if (len > (size_t)num - 3) {
        if (*p == ';' || *p == '#')
            return str; /* why silent: a long comment harms nothing once whole */
        if (*p == '[') {
            ini_end_section(c);
            c->kind = SECT_IGNORED;
            ini_report(c, "%s:%u: line longer than %d characters; ignored, with the keys "
                       "of its section", c->name, c->line, num - 3);
        } else {
            ini_report(c, "%s:%u: line longer than %d characters; ignored", c->name, c->line,
                       num - 3);
        }
        return str;
    }
    memcpy(str, p, len);
    str[len] = '\0';
    if (len == 0 || *p == ';' || *p == '#')
        return str;
    if (*p == '[') {
        const char *end = ini_find(p + 1, e, "]");
        if (end < e && *end == ']') {
            ini_section(c, p + 1, (size_t)(end - p - 1));
            return str;
        }
        ini_report(c, "%s:%u: syntax error (']' missing)", c->name, c->line);
    } else {
        const char *end = ini_find(p, e, "=:");
        if (end < e && (*end == '=' || *end == ':'))
            return str;
        ini_report(c, "%s:%u: syntax error (expected key = value)", c->name, c->line);
    }
    if (!c->first_syntax)
        c->first_syntax = c->line;
    return str;
}

/* "default 16" or "4 from line 2": what a bad line leaves in force. */
static void ini_using(config_ini_t *c, int id, char *buf, size_t cap)
{
    char v[32];
    if (c->sect && c->sect->line[id]) {
        _pm_opt_format(id, c->sect->value[id], v, sizeof v);
        _pm_diag_format(buf, cap, "%s from line %u", v, c->sect->line[id]);
        return;
    }
    /* Why look at [pmalloc]: [program:NAME] falls back on it. */
    if (c->kind == SECT_MINE || c->kind == SECT_OTHER)
        for (unsigned i = 0; i < c->nsects; i++)
            if (c->sects[i].len == 7 && memcmp(c->sects[i].name, "pmalloc", 7) == 0 &&
                c->sects[i].line[id]) {
                _pm_opt_format(id, c->sects[i].value[id], v, sizeof v);
                _pm_diag_format(buf, cap, "%s from line %u", v, c->sects[i].line[id]);
                return;
            }
    _pm_opt_format(id, _pm_options_default(id), v, sizeof v);
    _pm_diag_format(buf, cap, "default %s", v);
}

static int ini_on_key(void *user, const char *section, const char *name, const char *value)
{
    config_ini_t *c = user;
    char qn[96], qv[96], why[160], using[96], lo[32], hi[32];
    (void)section; /* why unused: ini_read_line tracks sections in full */
    _pm_config_quote(name, strlen(name), qn, sizeof qn);
    if (c->kind == SECT_NONE) {
        ini_report(c, "%s:%u: key '%s' outside any section; ignored (put it under [pmalloc])",
                   c->name, c->line, qn);
        return 1;
    }
    if (c->kind == SECT_IGNORED)
        return 1;
    c->hdr_keys++;
    if (!*name) {
        ini_report(c, "%s:%u: no key before '='", c->name, c->line);
        return 1;
    }
    int id = _pm_opt_find_key(name);
    if (id < 0) {
        const char *best = _pm_opt_suggest_key(name);
        if (best)
            ini_report(c, "%s:%u: unknown key '%s' (did you mean '%s'?)", c->name, c->line, qn,
                       best);
        else
            ini_report(c, "%s:%u: unknown key '%s'", c->name, c->line, qn);
        return 1;
    }
    size_t v;
    int r = _pm_opt_parse(id, value, &v, why, sizeof why);
    if (r != PM_PARSE_OK) {
        _pm_config_quote(value, strlen(value), qv, sizeof qv);
        ini_using(c, id, using, sizeof using);
        if (r == PM_PARSE_RANGE) {
            _pm_opt_format(id, _pm_opt_desc[id].min, lo, sizeof lo);
            _pm_opt_format(id, _pm_opt_desc[id].max, hi, sizeof hi);
            ini_report(c, "%s:%u: %s=%s out of range [%s, %s]; using %s", c->name, c->line,
                       name, qv, lo, hi, using);
        } else {
            ini_report(c, "%s:%u: %s='%s': %s; using %s", c->name, c->line, name, qv, why,
                       using);
        }
        return 1;
    }
    if (c->sect) {
        if (c->sect->line[id])
            ini_report(c, "%s:%u: '%s' set twice (line %u and %u); line %u wins", c->name,
                       c->line, name, c->sect->line[id], c->line, c->line);
        c->sect->line[id] = c->line;
        c->sect->value[id] = v;
    }
    /* Why at once: on_bad_config governs the lines after it, unless the
     * environment (higher priority) already chose. */
    if (id == PM_OPT_on_bad_config && c->apply && !env_mode_set &&
        (c->kind == SECT_PMALLOC || c->kind == SECT_MINE))
        _pm_config_mode = (int)v;
    return 1; /* why always 1: we report our own problems; inih's return
               * value then means its own syntax errors only */
}

void _pm_config_parse_text(const char *name, const char *text, size_t len, int apply)
{
    config_ini_t *c = &ini_ctx;
    memset(c, 0, sizeof *c);
    static char name_esc[1024];
    c->name = esc(name, name_esc, sizeof name_esc); /* for the reports only */
    c->text = text;
    c->len = len;
    c->apply = apply;
    c->prog = apply ? config_program() : NULL;
    if (apply && name != file_path) {
        size_t n = strlen(name);
        n = n < sizeof file_path - 1 ? n : sizeof file_path - 1;
        memcpy(file_path, name, n);
        file_path[n] = '\0';
    }
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        uint32_t line = 1;
        for (const char *p = text; p < nul; p++)
            line += *p == '\n';
        ini_report(c, "%s:%u: NUL byte: not a text file; file ignored", c->name, line);
        return;
    }
    if (&ini_use_stack && !ini_use_stack) {
        ini_report(c, "%s: inih is set to allocate its line buffer; file ignored", c->name);
        return;
    }
    int r = ini_parse_stream(ini_read_line, c, ini_on_key, c);
    ini_end_section(c);
    if (r > 0 && (c->first_syntax == 0 || (uint32_t)r < c->first_syntax))
        ini_report(c, "%s:%d: syntax error", c->name, r);
    else if (r < 0)
        ini_report(c, "%s: inih failed (%d); file ignored", c->name, r);
    if (c->shown > CONFIG_MAX_SHOWN)
        ini_note("%s: %u more problems not shown", c->name, c->shown - CONFIG_MAX_SHOWN);
    if (!apply || r < 0)
        return;
    /* [pmalloc] first, then this program's section over it. */
    for (int pass = 0; pass < 2; pass++)
        for (unsigned i = 0; i < c->nsects; i++) {
            config_sect_t *s = &c->sects[i];
            if (s->kind != (pass == 0 ? SECT_PMALLOC : SECT_MINE))
                continue;
            for (int id = 0; id < PM_OPT_COUNT; id++)
                if (s->line[id])
                    _pm_opt_store(id, s->value[id], PM_SRC_FILE, s->line[id]);
        }
}

/* ---- the load ---------------------------------------------------------- */

/* The file named by PM_CONFIG, else the system one if it exists; with
 * secure, the system one. */
static void config_load_file(bool secure)
{
    char eb[32];
    const char *env = secure ? NULL : _pm_os_getenv("PM_CONFIG");
    /* Why an empty PM_CONFIG means no file: it is how tests and users shut
     * the system file out without naming another. */
    if (env && !*env)
        return;
    int required = env != NULL;
    const char *path = env ? env : PM_SYSCONFDIR "/pmalloc.ini";
    const char *label = env ? "PM_CONFIG=" : "";
    const char *shown = esc(path, path_esc, sizeof path_esc);
    if (strlen(path) >= sizeof file_path) {
        _pm_config_report("%s%s: %s", label, shown, _pm_config_errno_text(ENAMETOOLONG, eb,
                                                                      sizeof eb));
        return;
    }
    ssize_t n = _pm_os_read_file(path, file_buf, sizeof file_buf);
    if (n == -2) {
        _pm_config_report("%s%s: file too large (over %uK); ignored", label, shown,
                          (unsigned)(PM_CONFIG_FILE_MAX / 1024));
        return;
    }
    if (n == -3) {
        _pm_config_report("%s%s: not a regular file; ignored", label, shown);
        return;
    }
    if (n < 0) {
        /* Why silent: the system file is optional; a named one is not. */
        if (!required && errno == ENOENT)
            return;
        _pm_config_report("%s%s: %s", label, shown, _pm_config_errno_text(errno, eb, sizeof eb));
        return;
    }
    memcpy(file_path, path, strlen(path) + 1);
    _pm_config_parse_text(file_path, file_buf, (size_t)n, 1);
}

void _pm_options_load(void)
{
    int saved = errno;
    _pm_options_reset();
    file_path[0] = '\0';
    /* Why: a set-user-ID, set-group-ID or capability-raising program runs
     * with rights its caller lacks, in the caller's environment; a file or
     * setting the caller names must neither be read with those rights (its
     * lines would come back in diagnostics) nor steer the allocator. glibc
     * ignores its MALLOC_* tunables there too. The system file, which only
     * root writes, still counts. */
    bool secure = _pm_config_secure || _pm_os_secure();
    load_secure = secure;
    int env_mode = secure ? -1 : _pm_options_env_mode();
    env_mode_set = env_mode >= 0;
    _pm_config_mode = env_mode_set ? env_mode : PM_BAD_WARN;
    config_load_file(secure);
    if (!env_mode_set)
        _pm_config_mode = (int)PM_OPT(on_bad_config);
    if (secure) {
        if (_pm_options_env_any())
            ini_note("set-user-ID or set-group-ID program: PM_* variables and PM_CONFIG "
                     "ignored");
    } else {
        _pm_options_env(env_mode);
        _pm_options_env_typos();
    }
    _pm_config_mode = -1;
    if (_pm_options_loaded_hook)
        _pm_options_loaded_hook();
    if (PM_OPT(print_config) && !_pm_config_no_print && _pm_config_diag_fd >= 0)
        _pm_config_dump_fd(_pm_config_diag_fd, PM_DUMP_TEXT);
    errno = saved;
}

unsigned _pm_config_check_file(const char *path)
{
    char eb[32];
    unsigned before = _pm_config_error_count();
    int saved = _pm_config_check_mode;
    _pm_config_check_mode = 1;
    ssize_t n = _pm_os_read_file(path, file_buf, sizeof file_buf);
    const char *shown = esc(path, path_esc, sizeof path_esc);
    if (n == -2)
        _pm_config_report("%s: file too large (over %uK); ignored", shown,
                          (unsigned)(PM_CONFIG_FILE_MAX / 1024));
    else if (n == -3)
        _pm_config_report("%s: not a regular file; ignored", shown);
    else if (n < 0)
        _pm_config_report("%s: %s", shown, _pm_config_errno_text(errno, eb, sizeof eb));
    else
        _pm_config_parse_text(path, file_buf, (size_t)n, 0);
    _pm_config_check_mode = saved;
    return _pm_config_error_count() - before;
}

/* ---- the dump ---------------------------------------------------------- */

typedef struct config_out {
    int fd, err;
    size_t n;
    char buf[1024];
} config_out_t;

static void out_flush(config_out_t *o)
{
    const char *p = o->buf;
    while (o->n && !o->err) {
        ssize_t w = write(o->fd, p, o->n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            o->err = w < 0 ? errno : EIO;
            break;
        }
        p += w;
        o->n -= (size_t)w;
    }
    o->n = 0;
}

static void out_mem(config_out_t *o, const char *s, size_t len)
{
    while (len) {
        if (o->n == sizeof o->buf)
            out_flush(o);
        size_t k = sizeof o->buf - o->n;
        k = k < len ? k : len;
        memcpy(o->buf + o->n, s, k);
        o->n += k;
        s += k;
        len -= k;
    }
}

static void out_str(config_out_t *o, const char *s)
{
    out_mem(o, s, strlen(s));
}

static void out_fmt(config_out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_fmt(config_out_t *o, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    size_t n = _pm_diag_vformat(line, sizeof line, fmt, ap);
    va_end(ap);
    out_mem(o, line, n);
}

static void out_json_str(config_out_t *o, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    if (!s) {
        out_str(o, "null");
        return;
    }
    out_str(o, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            out_mem(o, esc, 2);
        } else if (c < 0x20 || c == 0x7f) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            out_mem(o, esc, 6);
        } else {
            out_mem(o, (const char *)&c, 1);
        }
    }
    out_str(o, "\"");
}

static void out_json_value(config_out_t *o, int id, size_t v)
{
    char buf[32];
    if (_pm_opt_desc[id].kind == PM_KIND_ENUM) {
        _pm_opt_format(id, v, buf, sizeof buf);
        out_json_str(o, buf);
    } else {
        out_fmt(o, "%zu", v);
    }
}

int _pm_config_dump_fd(int fd, int format)
{
    if (format != PM_DUMP_TEXT && format != PM_DUMP_JSON) {
        errno = EINVAL;
        return -1;
    }
    pm_opt_state_t st[PM_OPT_COUNT];
    _pm_options_lock();
    memcpy(st, _pm_opt_state, sizeof st);
    _pm_options_unlock();
    config_out_t o = {.fd = fd};
    const char *prog = config_program();
    char val[32], def[32], src[320], psrc[320], pval[32];
    if (format == PM_DUMP_TEXT) {
        out_str(&o, "pmalloc settings (config file: ");
        char pe[256];
        out_str(&o, file_path[0] ? esc(file_path, path_esc, sizeof path_esc) : "none");
        out_fmt(&o, "; program: %s)\n", prog && *prog ? esc(prog, pe, sizeof pe) : "none");
    } else {
        out_str(&o, "{\"file\": ");
        out_json_str(&o, file_path[0] ? file_path : NULL);
        out_str(&o, ", \"program\": ");
        out_json_str(&o, prog && *prog ? prog : NULL);
        out_fmt(&o, ", \"problems\": %u, \"settings\": {", _pm_config_error_count());
    }
    size_t (*now_hook)(int) = _pm_options_now_hook;
    for (int id = 0; id < PM_OPT_COUNT; id++) {
        const pm_opt_desc_t *d = &_pm_opt_desc[id];
        size_t dv = _pm_options_default(id);
        size_t now = now_hook ? now_hook(id) : 0;
        char nowt[32];
        _pm_opt_format(id, now, nowt, sizeof nowt);
        _pm_opt_format(id, st[id].value, val, sizeof val);
        _pm_opt_format(id, dv, def, sizeof def);
        _pm_config_source_text(id, st[id].src, st[id].line, src, sizeof src);
        if (st[id].has_prev) {
            _pm_config_source_text(id, st[id].prev_src, st[id].prev_line, psrc, sizeof psrc);
            _pm_opt_format(id, st[id].prev_value, pval, sizeof pval);
        }
        if (format == PM_DUMP_TEXT) {
            out_fmt(&o, "  %s = %s (%s", d->key, val, src);
            if (st[id].has_prev)
                out_fmt(&o, "; overrides %s = %s", psrc, pval);
            out_str(&o, ")");
            if (st[id].src != PM_SRC_DEFAULT)
                out_fmt(&o, " [default %s]", def);
            if (now)
                out_fmt(&o, " [in force now: %s, mmap_dynamic]", nowt);
            out_str(&o, "\n");
            continue;
        }
        out_fmt(&o, "%s\n  \"%s\": {\"value\": ", id ? "," : "", d->key);
        out_json_value(&o, id, st[id].value);
        out_str(&o, ", \"default\": ");
        out_json_value(&o, id, dv);
        if (now) {
            out_str(&o, ", \"now\": ");
            out_json_value(&o, id, now);
        }
        out_str(&o, ", \"source\": ");
        out_json_str(&o, src);
        if (st[id].has_prev) {
            out_str(&o, ", \"overrides\": {\"value\": ");
            out_json_value(&o, id, st[id].prev_value);
            out_str(&o, ", \"source\": ");
            out_json_str(&o, psrc);
            out_str(&o, "}");
        }
        out_fmt(&o, ", \"env\": \"%s\", \"mallopt\": %d, \"min\": ", d->env, d->param);
        out_json_value(&o, id, d->min);
        out_str(&o, ", \"max\": ");
        out_json_value(&o, id, d->max);
        out_str(&o, "}");
    }
    if (format == PM_DUMP_JSON)
        out_str(&o, "\n}}\n");
    out_flush(&o);
    if (o.err) {
        errno = o.err;
        return -1;
    }
    return 0;
}

int pm_config_dump(int fd, int format)
{
    if (pm_init() != 0)
        return -1; /* called from inside init: the settings are loading */
    return _pm_config_dump_fd(fd, format);
}
