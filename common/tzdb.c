/*
 * common/tzdb.c - every IANA zone of the system, loaded once (see tzdb.h).
 *
 * Walks the zoneinfo directory, skipping the alternative trees (posix/,
 * right/) and the data files that are not zones; every file that tz_load()
 * accepts becomes an entry. Entries are sorted by name for bsearch().
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tzdb.h"

struct st_tzdb_t {
    tz_t *zones;
    size_t n, cap;
};

static int cmp_zone(const void *a, const void *b)
{
    return strcmp(((const tz_t *)a)->name, ((const tz_t *)b)->name);
}

static void walk(tzdb_t *db, const char *root, const char *rel, int depth)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s%s%s", root, *rel ? "/" : "", rel);
    DIR *d = opendir(path);
    if (d == NULL || depth > 4) {
        if (d != NULL)
            closedir(d);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (n[0] == '.' || (depth == 0 && (strcmp(n, "posix") == 0 || strcmp(n, "right") == 0)))
            continue;
        char sub[512];
        snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "", n);
        char full[1536];
        snprintf(full, sizeof(full), "%s/%s", root, sub);
        struct stat st;
        if (stat(full, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            walk(db, root, sub, depth + 1);
            continue;
        }
        if (!S_ISREG(st.st_mode) || tz_name_check(sub, NULL, 0) != 0)
            continue;
        tz_t tz;
        if (tz_load_dir(root, sub, &tz, NULL, 0) != 0)
            continue; /* zone.tab, leapseconds, tzdata.zi and friends */
        if (db->n == db->cap) {
            db->cap = db->cap ? db->cap * 2 : 512;
            db->zones = realloc(db->zones, db->cap * sizeof(*db->zones));
            if (db->zones == NULL)
                abort();
        }
        db->zones[db->n++] = tz;
    }
    closedir(d);
}

tzdb_t *tzdb_open(const char *dir)
{
    tzdb_t *db = calloc(1, sizeof(*db));
    if (db == NULL)
        abort();
    walk(db, dir != NULL ? dir : "/usr/share/zoneinfo", "", 0);
    if (tzdb_get(db, "UTC") == NULL) {
        /* tz_load() knows UTC without any file. */
        tz_t utc;
        if (tz_load_dir("/nonexistent", "UTC", &utc, NULL, 0) == 0) {
            db->zones = realloc(db->zones, (db->n + 1) * sizeof(*db->zones));
            db->zones[db->n++] = utc;
        }
    }
    if (db->n > 0)
        qsort(db->zones, db->n, sizeof(*db->zones), cmp_zone);
    return db;
}

void tzdb_close(tzdb_t *db)
{
    if (db == NULL)
        return;
    for (size_t i = 0; i < db->n; i++)
        tz_free(&db->zones[i]);
    free(db->zones);
    free(db);
}

const tz_t *tzdb_get(const tzdb_t *db, const char *name)
{
    if (db->n == 0 || name == NULL || strlen(name) > TZ_NAME_MAX)
        return NULL;
    tz_t key;
    snprintf(key.name, sizeof(key.name), "%s", name);
    return bsearch(&key, db->zones, db->n, sizeof(*db->zones), cmp_zone);
}
