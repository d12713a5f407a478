/*
 * api/changes.c - change feeds: every create, update and delete in commit order.
 *
 * Triggers write one `changes` row per change, stamped with the writing
 * transaction's id (schema/0003). A page holds only rows of transactions
 * older than the oldest one still running, ordered by (txid, seq), so a
 * transaction that commits late can never land behind a cursor a client
 * already holds: its rows stay invisible until every older transaction has
 * finished. The cursor is that (txid, seq) position, opaque to clients;
 * an empty page returns the same cursor, so clients simply poll with it.
 * Deletes appear as tombstones. Scopes apply through the owner and team
 * recorded with each change.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "changes.h"
#include "common/log.h"
#include "crud.h"
#include "changes_db.h"

typedef struct st_feed_t {
    char txid[24];
    char seq[24];
} feed_t;

static void on_feed(api_req_t *ar, const PGresult *res, int err, void *arg)
{
    feed_t *pos = arg;
    if (crud_check_result(ar, res, err) != 0)
        return;
    if (strcmp(PQgetvalue(res, 0, 0), "none") == 0) {
        api_send_error(ar, ERR_FORBIDDEN, "Your role may not read these records.");
        return;
    }
    int rows = PQntuples(res), n = 0;
    size_t hint = 128;
    for (int i = 0; i < rows; i++)
        if (!PQgetisnull(res, i, 1))
            hint += (size_t)PQgetlength(res, i, 3) + 1, n++;
    if (n > 0) {
        snprintf(pos->txid, sizeof(pos->txid), "%s", PQgetvalue(res, n - 1, 2));
        snprintf(pos->seq, sizeof(pos->seq), "%s", PQgetvalue(res, n - 1, 1));
    }
    json_t *c = json_pack("{s:s, s:s}", "t", pos->txid, "s", pos->seq);
    char *cursor = c != NULL ? cursor_encode(&ar->thread->server->cursor_key, c) : NULL;
    json_decref(c);
    if (cursor == NULL) {
        log_msg(LOG_ERROR, "request %s: the feed's cursor could not be encoded", ar->request_id);
        api_send_error(ar, ERR_INTERNAL, NULL);
        return;
    }
    crud_buf_t b;
    crud_buf_init(&b, &ar->req->pool, hint + strlen(cursor));
    crud_buf_puts(&b, "{\"data\":[");
    for (int i = 0; i < n; i++) {
        if (i > 0)
            crud_buf_append(&b, ",", 1);
        crud_buf_append(&b, PQgetvalue(res, i, 3), (size_t)PQgetlength(res, i, 3));
    }
    crud_buf_puts(&b, "],\"next_cursor\":\"");
    crud_buf_puts(&b, cursor);
    crud_buf_puts(&b, "\"}");
    free(cursor);
    api_send_raw(ar, 200, "application/json", b.base, b.len);
}

static int digits_only(const char *s)
{
    if (*s == '\0' || strlen(s) > 20)
        return 0;
    for (; *s != '\0'; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

static int feed(api_req_t *ar, int orders)
{
    static const char *const allowed[] = {"after", "limit", NULL};
    crud_query_t q;
    if (crud_parse_query(ar, allowed, &q) != 0)
        return 0;
    feed_t *pos = h2o_mem_alloc_pool(&ar->req->pool, sizeof(*pos));
    strcpy(pos->txid, "0");
    strcpy(pos->seq, "0");
    json_t *errors = json_array();
    const char *v;
    long limit = 100;
    if ((v = crud_query_get(&q, "limit")) != NULL) {
        char *end;
        limit = strtol(v, &end, 10);
        if (*v == '\0' || *end != '\0' || limit < 1 || limit > 1000)
            api_error_add(errors, "limit", "out_of_range", "must be an integer from 1 to 1000");
    }
    if ((v = crud_query_get(&q, "after")) != NULL) {
        json_t *c = cursor_decode(&ar->thread->server->cursor_key, v, strlen(v));
        json_t *t = c != NULL ? json_object_get(c, "t") : NULL, *s = c != NULL ? json_object_get(c, "s") : NULL;
        if (!json_is_string(t) || !json_is_string(s) || !digits_only(json_string_value(t)) ||
            !digits_only(json_string_value(s))) {
            api_error_add(errors, "after", "invalid_value", "is not a cursor this feed returned");
        } else {
            snprintf(pos->txid, sizeof(pos->txid), "%s", json_string_value(t));
            snprintf(pos->seq, sizeof(pos->seq), "%s", json_string_value(s));
        }
        if (c != NULL)
            json_decref(c);
    }
    if (json_array_size(errors) > 0)
        return api_send_invalid(ar, 400, "The query string has invalid parameters.", errors);
    json_decref(errors);
    return changes_db_feed(ar, orders, pos->txid, pos->seq, (int)limit, on_feed, pos);
}

int changes_customers(api_req_t *ar)
{
    return feed(ar, 0);
}

int changes_orders(api_req_t *ar)
{
    return feed(ar, 1);
}
