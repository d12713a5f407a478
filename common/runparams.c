/*
 * common/runparams.c - the parameters of analytics runs (see runparams.h).
 *
 * rfm: as_of (RFC 3339; default now), lookback_days (null or 1..36500), tag
 * (null or 1..50 characters), new_days (30), active_days (90), churn_days
 * (180), each 0..36500 with new_days <= active_days <= churn_days not
 * required but all non-negative, a_share (0.80) and b_share (0.95) as
 * decimal strings with 0 < a_share <= b_share <= 1 (kept as the client wrote them).
 * clv: as_of, time_unit (day|week, default week), horizon (1..5200, 52),
 * discount_rate (decimal string 0..1, "0"), alive_active (0.7) and
 * alive_at_risk (0.3) decimal strings with 0 <= at_risk <= active <= 1,
 * penalizer (decimal string 0..1000, "0"), tag, first_purchase_after,
 * first_purchase_before (RFC 3339 or null), new_days (30: as in rfm, a customer
 * whose first purchase is fewer days before as_of is "new").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decimal.h"
#include "jx.h"
#include "runparams.h"

static void add_error(json_t *errors, const char *name, const char *code, const char *message)
{
    char field[64];
    snprintf(field, sizeof(field), "params.%s", name);
    json_array_append_new(errors, json_pack("{s:s, s:s, s:s}", "field", field, "code", code, "message", message));
}

int runparams_kind_ok(const char *kind)
{
    return kind != NULL && (strcmp(kind, "rfm") == 0 || strcmp(kind, "clv") == 0);
}

static void format_time(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* An integer member in [min, max], default def; NULL allowed when nullable. */
static void take_int(json_t *out, const json_t *in, const char *name, long long min, long long max, long long def,
                     int nullable, json_t *errors)
{
    json_t *v = json_object_get(in, name);
    if (v == NULL || (json_is_null(v) && nullable)) {
        json_object_set_new(out, name, def < 0 ? json_null() : json_integer(def)); /* def < 0: null */
        return;
    }
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        char msg[96];
        snprintf(msg, sizeof(msg), "must be an integer from %lld to %lld", min, max);
        add_error(errors, name, json_is_integer(v) ? "out_of_range" : "invalid_type", msg);
        return;
    }
    json_object_set(out, name, v);
}

/* A decimal string in [min, max]; stored back in canonical form. */
static void take_decimal(json_t *out, const json_t *in, const char *name, const char *min, const char *max,
                         const char *def, json_t *errors, dec_t *value)
{
    json_t *v = json_object_get(in, name);
    const char *s = def;
    char *num = NULL;
    if (v != NULL) {
        if (json_is_number(v)) {
            /* A JSON number stands for the decimal it reads as (0.7 is "0.7"). */
            if ((num = jx_number_decimal(v)) == NULL) {
                add_error(errors, name, "invalid_type",
                          "must be a decimal such as \"0.80\" or 0.8 (at most 15 significant digits)");
                return;
            }
            s = num;
        } else if (!json_is_string(v)) {
            add_error(errors, name, "invalid_type", "must be a decimal such as \"0.80\" or 0.8");
            return;
        } else {
            s = json_string_value(v);
        }
    }
    dec_t d, lo, hi;
    dec_parse(min, strlen(min), 6, &lo);
    dec_parse(max, strlen(max), 6, &hi);
    if (dec_parse(s, strlen(s), 6, &d) != 0) {
        add_error(errors, name, "invalid_format", "must be a decimal such as \"0.80\" or 0.8");
        free(num);
        return;
    }
    if (dec_cmp(d, lo) < 0 || dec_cmp(d, hi) > 0) {
        char msg[96];
        snprintf(msg, sizeof(msg), "must be between %s and %s", min, max);
        add_error(errors, name, "out_of_range", msg);
        free(num);
        return;
    }
    json_object_set_new(out, name, json_string(s));
    free(num);
    if (value != NULL)
        *value = d;
}

static void take_time(json_t *out, const json_t *in, const char *name, const char *def, int nullable, json_t *errors)
{
    json_t *v = json_object_get(in, name);
    if (v == NULL || json_is_null(v)) {
        if (def == NULL && !nullable)
            add_error(errors, name, "required", "is required");
        json_object_set_new(out, name, def != NULL ? json_string(def) : json_null());
        return;
    }
    int64_t secs;
    int32_t micros;
    if (!json_is_string(v) || jx_parse_rfc3339(json_string_value(v), &secs, &micros) != 0) {
        add_error(errors, name, "invalid_format", "must be an RFC 3339 timestamp such as 2026-01-31T00:00:00Z");
        return;
    }
    char buf[48];
    format_time(secs, buf);
    if (micros != 0) {
        /* keep sub-second precision: ".uuuuuuZ" */
        snprintf(buf + 19, sizeof(buf) - 19, ".%06dZ", (int)micros);
    }
    json_object_set_new(out, name, json_string(buf));
}

static void take_tag(json_t *out, const json_t *in, json_t *errors)
{
    json_t *v = json_object_get(in, "tag");
    if (v == NULL || json_is_null(v)) {
        json_object_set_new(out, "tag", json_null());
        return;
    }
    size_t chars = 0;
    if (json_is_string(v))
        for (const char *p = json_string_value(v); *p != '\0'; p++)
            chars += ((unsigned char)*p & 0xC0) != 0x80; /* count code points, as customer tags do */
    if (!json_is_string(v) || chars < 1 || chars > 50 || strlen(json_string_value(v)) != json_string_length(v)) {
        add_error(errors, "tag", "invalid_value", "must be a tag of 1 to 50 characters");
        return;
    }
    json_object_set(out, "tag", v);
}

json_t *runparams_complete(const char *kind, const json_t *params, int64_t now, json_t *errors)
{
    size_t before = json_array_size(errors);
    json_t *empty = NULL;
    if (params == NULL || json_is_null(params))
        params = empty = json_object();
    if (!json_is_object(params)) {
        json_array_append_new(errors, json_pack("{s:s, s:s, s:s}", "field", "params", "code", "invalid_type", "message",
                                                "must be an object"));
        return NULL;
    }
    static const char *const rfm_keys[] = {"as_of",       "lookback_days", "tag",     "new_days", "active_days",
                                           "churn_days",  "a_share",       "b_share", NULL};
    static const char *const clv_keys[] = {"as_of",        "time_unit",     "horizon",   "discount_rate",
                                           "alive_active", "alive_at_risk", "penalizer", "tag",
                                           "first_purchase_after", "first_purchase_before", "new_days", NULL};
    int rfm = strcmp(kind, "rfm") == 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)params, key, v)
    {
        int known = 0;
        for (const char *const *k = rfm ? rfm_keys : clv_keys; *k != NULL; k++)
            known |= strcmp(*k, key) == 0;
        if (!known)
            add_error(errors, key, "unknown_field", "is not a parameter of this kind of run");
    }
    char nowbuf[32];
    format_time(now, nowbuf);
    json_t *out = json_object();
    take_time(out, params, "as_of", nowbuf, 0, errors);
    take_tag(out, params, errors);
    if (rfm) {
        dec_t a = {0}, b = {0};
        take_int(out, params, "lookback_days", 1, 36500, -1, 1, errors);
        take_int(out, params, "new_days", 0, 36500, 30, 0, errors);
        take_int(out, params, "active_days", 0, 36500, 90, 0, errors);
        take_int(out, params, "churn_days", 0, 36500, 180, 0, errors);
        take_decimal(out, params, "a_share", "0.000001", "1", "0.80", errors, &a);
        take_decimal(out, params, "b_share", "0.000001", "1", "0.95", errors, &b);
        if (json_array_size(errors) == before && dec_cmp(a, b) > 0)
            add_error(errors, "a_share", "invalid_value", "must not be larger than b_share");
    } else {
        json_t *tu = json_object_get(params, "time_unit");
        if (tu != NULL && !(json_is_string(tu) && (strcmp(json_string_value(tu), "day") == 0 ||
                                                   strcmp(json_string_value(tu), "week") == 0)))
            add_error(errors, "time_unit", "invalid_value", "must be day or week");
        else
            json_object_set_new(out, "time_unit", json_string(tu != NULL ? json_string_value(tu) : "week"));
        dec_t active = {0}, at_risk = {0};
        take_int(out, params, "horizon", 1, 5200, 52, 0, errors);
        take_int(out, params, "new_days", 0, 36500, 30, 0, errors);
        take_decimal(out, params, "discount_rate", "0", "1", "0", errors, NULL);
        take_decimal(out, params, "alive_active", "0", "1", "0.7", errors, &active);
        take_decimal(out, params, "alive_at_risk", "0", "1", "0.3", errors, &at_risk);
        take_decimal(out, params, "penalizer", "0", "1000", "0", errors, NULL);
        take_time(out, params, "first_purchase_after", NULL, 1, errors);
        take_time(out, params, "first_purchase_before", NULL, 1, errors);
        if (json_array_size(errors) == before && dec_cmp(at_risk, active) > 0)
            add_error(errors, "alive_at_risk", "invalid_value", "must not be larger than alive_active");
    }
    if (empty != NULL)
        json_decref(empty);
    if (json_array_size(errors) > before) {
        json_decref(out);
        return NULL;
    }
    return out;
}

json_t *runparams_complete_text(const char *kind, const json_t *params, int64_t now, char *err, size_t errlen)
{
    json_t *errors = json_array();
    json_t *complete = runparams_complete(kind, params, now, errors);
    if (complete == NULL && errlen > 0) {
        size_t i, off = 0;
        json_t *e;
        err[0] = '\0';
        json_array_foreach(errors, i, e)
        {
            const char *field = json_string_value(json_object_get(e, "field"));
            const char *msg = json_string_value(json_object_get(e, "message"));
            if (field != NULL && strncmp(field, "params.", 7) == 0)
                field += 7;
            if (off < errlen)
                off += (size_t)snprintf(err + off, errlen - off, "%s%s %s", i > 0 ? "; " : "",
                                        field != NULL ? field : "params", msg != NULL ? msg : "is invalid");
        }
    }
    json_decref(errors);
    return complete;
}
