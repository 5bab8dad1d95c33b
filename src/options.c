/* SPDX-License-Identifier: MIT */
/*
 * options.c - the tunables: the PM_OPTIONS table expanded into descriptors,
 * value parsing and formatting, the environment layer, pm_mallopt's store,
 * and the policy for bad settings (warn, quiet, abort). It allocates
 * nothing, calls no stdio and no getenv: it runs inside pm_init.
 */
#define _GNU_SOURCE
#include "options.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "diag.h"
#include "os.h"

#define PM_OPT_STATE_VALUE(id) __atomic_load_n(&_pm_opt_state[id].value, __ATOMIC_RELAXED)

const pm_opt_desc_t _pm_opt_desc[PM_OPT_COUNT] = {
#define PM_X_DESC(id, env, key, param, def, min, max, kind, help) \
    [PM_OPT_##id] = {#id, env, key, help, param, def, min, max, kind},
    PM_OPTIONS(PM_X_DESC)
#undef PM_X_DESC
};

/* Statically the table's defaults, so a read before the load is sane. */
pm_opt_state_t _pm_opt_state[PM_OPT_COUNT] = {
#define PM_X_STATE(id, env, key, param, def, min, max, kind, help) [PM_OPT_##id] = {.value = def},
    PM_OPTIONS(PM_X_STATE)
#undef PM_X_STATE
};

int (*_pm_options_busy_hook)(int id, size_t value);
size_t (*_pm_options_now_hook)(int id);
void (*_pm_options_loaded_hook)(void);
void (*_pm_options_applied_hook)(int id);

int _pm_config_mode = -1;
int _pm_config_diag_fd = 2;
int _pm_config_check_mode;
int _pm_config_no_print;
int _pm_config_secure;
const char *_pm_config_program;

static unsigned config_errors;
static int opt_lock;
/* pm_mallopt problems already reported: bit 0 range, bit 1 busy per option,
 * and the first few unknown parameters (each is reported once). */
static uint8_t mallopt_told[PM_OPT_COUNT];
static int mallopt_unknown[8];
static unsigned mallopt_nunknown;

static const char *const bad_names[] = {"warn", "quiet", "abort"};

void _pm_options_lock(void)
{
    while (__atomic_exchange_n(&opt_lock, 1, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(&opt_lock, __ATOMIC_RELAXED))
            ;
}

void _pm_options_unlock(void)
{
    __atomic_store_n(&opt_lock, 0, __ATOMIC_RELEASE);
}

size_t _pm_options_default(int id)
{
    if (id < 0 || id >= PM_OPT_COUNT)
        return 0;
    const pm_opt_desc_t *d = &_pm_opt_desc[id];
    if (d->def != PM_DEFAULT_AUTO)
        return d->def;
    /* Why 8 x CPUs: enough arenas that threads rarely share one, few enough
     * that memory held per arena stays bounded (glibc uses the same). */
    size_t v = 8 * (size_t)_pm_os_ncpus();
    return v < d->min ? d->min : v > d->max ? d->max : v;
}

void _pm_options_reset(void)
{
    _pm_options_lock();
    for (int id = 0; id < PM_OPT_COUNT; id++) {
        pm_opt_state_t *st = &_pm_opt_state[id];
        st->src = st->prev_src = st->has_prev = PM_SRC_DEFAULT;
        st->line = st->prev_line = 0;
        st->prev_value = 0;
        __atomic_store_n(&st->value, _pm_options_default(id), __ATOMIC_RELAXED);
        mallopt_told[id] = 0;
    }
    mallopt_nunknown = 0;
    _pm_options_unlock();
    __atomic_store_n(&config_errors, 0, __ATOMIC_RELAXED);
    _pm_config_mode = -1;
}

unsigned _pm_config_error_count(void)
{
    return __atomic_load_n(&config_errors, __ATOMIC_RELAXED);
}

static void opt_store_locked(int id, size_t value, int src, uint32_t line)
{
    pm_opt_state_t *st = &_pm_opt_state[id];
    /* Why only non-defaults: "overrides the default" says nothing the
     * dump's [default N] does not already say. */
    if (st->src != PM_SRC_DEFAULT) {
        st->prev_value = st->value;
        st->prev_src = st->src;
        st->prev_line = st->line;
        st->has_prev = 1;
    }
    st->src = (uint8_t)src;
    st->line = line;
    __atomic_store_n(&st->value, value, __ATOMIC_RELAXED);
}

void _pm_opt_store(int id, size_t value, int src, uint32_t line)
{
    _pm_options_lock();
    opt_store_locked(id, value, src, line);
    _pm_options_unlock();
}

/* ---- diagnostics policy ------------------------------------------------ */

void _pm_config_vreport(int flags, const char *fmt, va_list ap)
{
    if (!(flags & PM_REPORT_NOTE))
        __atomic_add_fetch(&config_errors, 1, __ATOMIC_RELAXED);
    int mode = _pm_config_mode >= 0 ? _pm_config_mode : (int)PM_OPT(on_bad_config);
    if (_pm_config_check_mode)
        mode = PM_BAD_WARN; /* why: --check must show every problem and go on */
    if (mode == PM_BAD_QUIET || (flags & PM_REPORT_HIDE))
        return;
    char line[512];
    size_t n = _pm_diag_format(line, sizeof line, "pmalloc: ");
    n += _pm_diag_vformat(line + n, sizeof line - 1 - n, fmt, ap);
    line[n++] = '\n';
    if (_pm_config_diag_fd >= 0)
        _pm_write_all(_pm_config_diag_fd, line, n);
    /* Why a call never aborts: it returns 0 and the program can act on
     * that (jemalloc's abort_conf spares mallctl in the same way). */
    if (mode == PM_BAD_ABORT && !(flags & (PM_REPORT_NOTE | PM_REPORT_CALL))) {
        static const char msg[] = "pmalloc: aborting (on_bad_config = abort)\n";
        if (_pm_config_diag_fd >= 0)
            _pm_write_all(_pm_config_diag_fd, msg, sizeof msg - 1);
        abort();
    }
}

void _pm_config_report(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _pm_config_vreport(0, fmt, ap);
    va_end(ap);
}

char *_pm_config_quote(const char *text, size_t len, char *buf, size_t cap)
{
    /* Why cut at 60: a diagnostic line should stay one readable line. */
    return _pm_config_escape(text, len, 60, buf, cap);
}

char *_pm_config_escape(const char *text, size_t len, size_t cut, char *buf, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < len && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)text[i];
        if (i == cut) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (c >= 0x20 && c < 0x7f) {
            buf[o++] = (char)c;
        } else {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[c >> 4];
            buf[o++] = hex[c & 15];
        }
    }
    if (cap)
        buf[o < cap ? o : cap - 1] = '\0';
    return buf;
}

/* ---- values ------------------------------------------------------------ */

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int same_word(const char *a, const char *b)
{
    while (*a && lower(*a) == lower(*b))
        a++, b++;
    return *a == '\0' && *b == '\0';
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = lower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Digits at s (decimal, or hex after 0x); *end after them. Returns 0 when
 * there are none, 1 for a number, 2 when it overflows (*out = SIZE_MAX). */
static int parse_digits(const char *s, size_t *out, const char **end)
{
    unsigned base = 10;
    /* Why accept 0x: addresses and sizes are often written in hex by people
     * who tune allocators; a leading 0 stays decimal (no octal surprise). */
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && hex_digit(s[2]) >= 0) {
        base = 16;
        s += 2;
    }
    size_t v = 0;
    int any = 0, over = 0, d;
    for (; (d = hex_digit(*s)) >= 0 && (unsigned)d < base; s++) {
        any = 1;
        if (v > (SIZE_MAX - (size_t)d) / base)
            over = 1;
        else
            v = v * base + (size_t)d;
    }
    *end = s;
    *out = over ? SIZE_MAX : v;
    return !any ? 0 : over ? 2 : 1;
}

static int parse_fail(char *why, size_t cap, const char *fmt, const char *arg)
{
    char q[96];
    if (arg)
        _pm_config_quote(arg, strlen(arg), q, sizeof q);
    _pm_diag_format(why, cap, fmt, arg ? q : "");
    return PM_PARSE_BAD;
}

static int parse_word(int id, const char *text, size_t *out, char *why, size_t cap)
{
    const pm_opt_desc_t *d = &_pm_opt_desc[id];
    if (d->kind == PM_KIND_BOOL) {
        static const char *const yes[] = {"yes", "true", "on"};
        static const char *const no[] = {"no", "false", "off"};
        for (int i = 0; i < 3; i++) {
            if (same_word(yes[i], text)) {
                *out = 1;
                return PM_PARSE_OK;
            }
            if (same_word(no[i], text)) {
                *out = 0;
                return PM_PARSE_OK;
            }
        }
        return parse_fail(why, cap, "not a boolean (use 0 or 1, yes or no, true or false, "
                          "on or off)%s", NULL);
    }
    for (size_t i = 0; i < sizeof bad_names / sizeof *bad_names; i++)
        if (same_word(bad_names[i], text)) {
            *out = i;
            return PM_PARSE_OK;
        }
    return parse_fail(why, cap, "not one of warn, quiet, abort%s", NULL);
}

int _pm_opt_parse(int id, const char *text, size_t *out, char *why, size_t cap)
{
    const pm_opt_desc_t *d = &_pm_opt_desc[id];
    if (cap)
        why[0] = '\0';
    if (!text || !*text)
        return parse_fail(why, cap, "empty value%s", NULL);
    size_t len = strlen(text);
    /* Why reject: inih strips spaces in files, so spaces here come from the
     * environment, where "4 " is more likely a quoting slip than intent. */
    if (is_space(text[0]) || is_space(text[len - 1]))
        return parse_fail(why, cap, "leading or trailing space%s", NULL);
    const char *s = text, *end;
    int neg = 0;
    if (*s == '-' || *s == '+')
        neg = *s++ == '-';
    size_t v;
    int r = parse_digits(s, &v, &end);
    if (r == 0) {
        if (!neg && (d->kind == PM_KIND_BOOL || d->kind == PM_KIND_ENUM))
            return parse_word(id, text, out, why, cap);
        return parse_fail(why, cap, "not a number%s", NULL);
    }
    int over = r == 2;
    if (*end == '.' && end[1] >= '0' && end[1] <= '9')
        return parse_fail(why, cap, "not a whole number%s", NULL);
    if ((*end == 'x' || *end == 'X') && end == s + 1 && *s == '0')
        return parse_fail(why, cap, "not a number (0x needs hex digits)%s", NULL);
    if (*end) {
        int letter = (*end >= 'a' && *end <= 'z') || (*end >= 'A' && *end <= 'Z');
        if (!letter)
            return parse_fail(why, cap, "unexpected '%s' after the number", end);
        if (d->kind != PM_KIND_SIZE)
            return parse_fail(why, cap, "'%s': only sizes take a unit", end);
        unsigned shift = 0;
        switch (lower(*end)) {
        case 'k': shift = 10; break;
        case 'm': shift = 20; break;
        case 'g': shift = 30; break;
        }
        const char *rest = end + 1;
        if (shift && (rest[0] == 'i' || rest[0] == 'I') && (rest[1] == 'B' || rest[1] == 'b'))
            rest += 2;
        if (!shift || *rest)
            return parse_fail(why, cap, "unknown unit '%s' (use K, M or G)", end);
        if (v > (SIZE_MAX >> shift))
            over = 1;
        v = over ? SIZE_MAX : v << shift;
    }
    if (neg && v != 0)
        over = 1;
    *out = neg ? 0 : v;
    if (over || v < d->min || v > d->max) {
        /* Why not a range: [warn, abort] would read oddly for three names. */
        if (d->kind == PM_KIND_ENUM)
            return parse_fail(why, cap, "not one of warn, quiet, abort%s", NULL);
        return PM_PARSE_RANGE;
    }
    return PM_PARSE_OK;
}

size_t _pm_opt_format(int id, size_t v, char *buf, size_t cap)
{
    const pm_opt_desc_t *d = &_pm_opt_desc[id];
    if (d->kind == PM_KIND_ENUM && v < sizeof bad_names / sizeof *bad_names)
        return _pm_diag_format(buf, cap, "%s", bad_names[v]);
    if (d->kind == PM_KIND_SIZE && v != 0) {
        static const char units[] = "GMK";
        for (int i = 0; i < 3; i++) {
            size_t unit = (size_t)1 << (30 - 10 * i);
            if (v % unit == 0)
                return _pm_diag_format(buf, cap, "%zu%c", v / unit, units[i]);
        }
    }
    return _pm_diag_format(buf, cap, "%zu", v);
}

size_t _pm_opt_using(int id, char *buf, size_t cap)
{
    _pm_options_lock();
    pm_opt_state_t st = _pm_opt_state[id];
    _pm_options_unlock();
    char v[32], src[320];
    _pm_opt_format(id, st.value, v, sizeof v);
    if (st.src == PM_SRC_DEFAULT)
        return _pm_diag_format(buf, cap, "default %s", v);
    _pm_config_source_text(id, st.src, st.line, src, sizeof src);
    return _pm_diag_format(buf, cap, "%s from %s", v, src);
}

/* ---- names ------------------------------------------------------------- */

int _pm_opt_find_key(const char *key)
{
    for (int id = 0; id < PM_OPT_COUNT; id++)
        if (strcmp(_pm_opt_desc[id].key, key) == 0)
            return id;
    return -1;
}

int _pm_opt_find_env(const char *name)
{
    for (int id = 0; id < PM_OPT_COUNT; id++)
        if (strcmp(_pm_opt_desc[id].env, name) == 0)
            return id;
    return -1;
}

/* Edit distance (insert, delete, substitute, swap of neighbours), letters
 * compared without case; names over 63 characters are never close. */
static unsigned name_distance(const char *a, size_t la, const char *b)
{
    size_t lb = strlen(b);
    if (la > 63 || lb > 63)
        return 1000;
    unsigned rows[3][64], *pp = rows[0], *p = rows[1], *c = rows[2];
    for (size_t j = 0; j <= lb; j++)
        p[j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        c[0] = (unsigned)i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned cost = lower(a[i - 1]) != lower(b[j - 1]);
            unsigned best = p[j - 1] + cost;
            if (p[j] + 1 < best)
                best = p[j] + 1;
            if (c[j - 1] + 1 < best)
                best = c[j - 1] + 1;
            if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
                lower(a[i - 2]) == lower(b[j - 1]) && pp[j - 2] + 1 < best)
                best = pp[j - 2] + 1;
            c[j] = best;
        }
        unsigned *t = pp;
        pp = p;
        p = c;
        c = t;
    }
    return p[lb];
}

/* Why "close" is at most 2 edits and under a third of the name: that catches
 * typos (arena_maxx, PM_CHEK) without suggesting unrelated short names. A
 * name that is the start of cand (decay for decay_ms) is close however many
 * letters it lacks: a name cut short is no one else's. */
static int is_close(unsigned dist, const char *name, size_t n, const char *cand)
{
    if (n > 0 && n < strlen(cand) && strncmp(name, cand, n) == 0)
        return 1;
    return dist <= 2 && dist * 3 <= strlen(cand);
}

const char *_pm_opt_suggest_key(const char *key)
{
    const char *best = NULL;
    unsigned bd = 1000;
    for (int id = 0; id < PM_OPT_COUNT; id++) {
        const char *cand = _pm_opt_desc[id].key;
        unsigned dd = name_distance(key, strlen(key), cand);
        if (dd < bd && is_close(dd, key, strlen(key), cand)) {
            bd = dd;
            best = _pm_opt_desc[id].key;
        }
    }
    return best;
}

/* ---- environment ------------------------------------------------------- */

static void env_problem(int id, const char *text, int r, const char *why)
{
    const pm_opt_desc_t *d = &_pm_opt_desc[id];
    char q[96], using[360], lo[32], hi[32];
    _pm_config_quote(text, strlen(text), q, sizeof q);
    _pm_opt_using(id, using, sizeof using);
    if (r == PM_PARSE_RANGE) {
        _pm_opt_format(id, d->min, lo, sizeof lo);
        _pm_opt_format(id, d->max, hi, sizeof hi);
        _pm_config_report("%s=%s out of range [%s, %s]; using %s", d->env, q, lo, hi, using);
    } else {
        _pm_config_report("%s='%s': %s; using %s", d->env, q, why, using);
    }
}

int _pm_options_env_mode(void)
{
    const char *v = _pm_os_getenv(_pm_opt_desc[PM_OPT_on_bad_config].env);
    if (!v)
        return -1;
    size_t m;
    char why[160];
    int r = _pm_opt_parse(PM_OPT_on_bad_config, v, &m, why, sizeof why);
    if (r != PM_PARSE_OK) {
        env_problem(PM_OPT_on_bad_config, v, r, why);
        return -1;
    }
    return (int)m;
}

void _pm_options_env(int mode_from_env)
{
    for (int id = 0; id < PM_OPT_COUNT; id++) {
        /* Why separate: PM_ON_BAD_CONFIG was read (and any problem with it
         * reported) before the file, since it governs the file's reports. */
        if (id == PM_OPT_on_bad_config) {
            if (mode_from_env >= 0)
                _pm_opt_store(id, (size_t)mode_from_env, PM_SRC_ENV, 0);
            continue;
        }
        const char *v = _pm_os_getenv(_pm_opt_desc[id].env);
        if (!v)
            continue;
        size_t val;
        char why[160];
        int r = _pm_opt_parse(id, v, &val, why, sizeof why);
        if (r == PM_PARSE_OK)
            _pm_opt_store(id, val, PM_SRC_ENV, 0);
        else
            env_problem(id, v, r, why);
    }
}

extern char **environ;

/* The name of environment entry e if it is a PM_* variable, into name
 * (64 bytes); its length, or 0. */
static size_t env_pm_name(const char *e, char *name)
{
    const char *eq = strchr(e, '=');
    size_t n = eq ? (size_t)(eq - e) : 0;
    if (strncmp(e, "PM_", 3) != 0 || n == 0 || n >= 64)
        return 0;
    memcpy(name, e, n);
    name[n] = '\0';
    return n;
}

static bool env_name_ours(const char *name)
{
    return _pm_opt_find_env(name) >= 0 || strcmp(name, "PM_CONFIG") == 0;
}

/* Why environ directly in these two: os.h offers single lookups only, and
 * both scans are optional; without environ (very early preload) they find
 * nothing. */
bool _pm_options_env_any(void)
{
    char name[64];
    for (char **env = environ; env && *env; env++)
        if (env_pm_name(*env, name) && env_name_ours(name))
            return true;
    return false;
}

void _pm_options_env_typos(void)
{
    char **env = environ;
    if (!env)
        return;
    for (; *env; env++) {
        char name[64];
        size_t n = env_pm_name(*env, name);
        if (n == 0 || env_name_ours(name))
            continue;
        const char *best = NULL;
        unsigned bd = 1000;
        for (int id = 0; id <= PM_OPT_COUNT; id++) {
            const char *cand = id < PM_OPT_COUNT ? _pm_opt_desc[id].env : "PM_CONFIG";
            unsigned dd = name_distance(name, n, cand);
            if (dd < bd && is_close(dd, name + 3, n - 3, cand + 3)) {
                bd = dd;
                best = cand;
            }
        }
        /* Why only close names: other programs use PM_* variables too; an
         * unrelated one (PM_TEST_SRCDIR) is none of our business. */
        if (best)
            _pm_config_report("unknown variable %s (did you mean %s?); ignored", name, best);
    }
}

/* ---- pm_mallopt -------------------------------------------------------- */

/* Report a pm_mallopt problem once per option and kind; returns whether
 * this call is the first (the caller then reports). */
static int mallopt_first(int id, int param, uint8_t bit)
{
    int first = 0;
    _pm_options_lock();
    if (id >= 0) {
        first = !(mallopt_told[id] & bit);
        mallopt_told[id] |= bit;
    } else {
        first = 1;
        for (unsigned i = 0; i < mallopt_nunknown; i++)
            if (mallopt_unknown[i] == param)
                first = 0;
        /* Why silent once full: a program looping over odd parameters must
         * not flood stderr; the first eight are enough to see the mistake. */
        if (first && mallopt_nunknown < sizeof mallopt_unknown / sizeof *mallopt_unknown)
            mallopt_unknown[mallopt_nunknown++] = param;
        else
            first = 0;
    }
    _pm_options_unlock();
    return first;
}

/* A pm_mallopt problem: said as the settings say, but never an abort. */
static void mallopt_report(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _pm_config_vreport(PM_REPORT_CALL, fmt, ap);
    va_end(ap);
}

int _pm_options_set(int param, int value)
{
    int id = -1;
    for (int i = 0; i < PM_OPT_COUNT; i++)
        if (_pm_opt_desc[i].param == param)
            id = i;
    if (id < 0) {
        if (mallopt_first(-1, param, 0))
            mallopt_report("pm_mallopt(%d, %d): unknown parameter", param, value);
        errno = EINVAL;
        return 0;
    }
    const pm_opt_desc_t *d = &_pm_opt_desc[id];
    char now[32], lo[32], hi[32];
    _pm_opt_format(id, PM_OPT_STATE_VALUE(id), now, sizeof now);
    if (value < 0 || (size_t)value < d->min || (size_t)value > d->max) {
        if (mallopt_first(id, param, 1)) {
            _pm_opt_format(id, d->min, lo, sizeof lo);
            _pm_opt_format(id, d->max, hi, sizeof hi);
            mallopt_report("pm_mallopt(%s, %d): out of range [%s, %s]; %s stays %s",
                           d->env, value, lo, hi, d->key, now);
        }
        errno = ERANGE;
        return 0;
    }
    /* Why one locked section: whether the change may still take effect,
     * the change and what the core derives from it must not let an
     * allocation in between (see _pm_options_busy_hook). */
    _pm_options_lock();
    int (*busy)(int, size_t) = _pm_options_busy_hook;
    int refused = busy && (size_t)value != PM_OPT_STATE_VALUE(id) && busy(id, (size_t)value);
    if (!refused) {
        opt_store_locked(id, (size_t)value, PM_SRC_MALLOPT, 0);
        if (_pm_options_applied_hook)
            _pm_options_applied_hook(id);
    }
    _pm_options_unlock();
    if (refused) {
        if (mallopt_first(id, param, 2))
            mallopt_report("pm_mallopt(%s, %d): too late to change %s; it stays %s",
                           d->env, value, d->key, now);
        errno = EBUSY;
        return 0;
    }
    return 1;
}
