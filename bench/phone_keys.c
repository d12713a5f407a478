/*
 * bench/phone_keys.c - the phone keys the API probes for each record, for
 * the pgbench reference of the duplicates lookup (bench/config.sh).
 *
 * Reads "id<TAB>phone" lines (COPY text, \N for none) and writes
 * "id<TAB>{key,...}" lines: the keys of the number read as E.164 in the
 * region given as the only argument (default CN), exactly as
 * api/merge.c computes them with common/phone.c; "{}" when the number is
 * not one the normaliser reads.
 */
#include <stdio.h>
#include <string.h>

#include "common/phone.h"

int main(int argc, char **argv)
{
    const phone_region_t *region = phone_region(argc > 1 ? argv[1] : "CN");
    char line[512];
    if (region == NULL) {
        fprintf(stderr, "phone_keys: unknown region %s\n", argv[1]);
        return 2;
    }
    while (fgets(line, sizeof(line), stdin) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        char *tab = strchr(line, '\t'), e164[PHONE_E164_MAX], keys[PHONE_KEYS_MAX][PHONE_KEY_MAX];
        if (tab == NULL)
            continue;
        *tab = '\0';
        const char *phone = tab + 1;
        int n = strcmp(phone, "\\N") != 0 && phone_e164(phone, strlen(phone), region, e164) == 0
                    ? phone_keys(e164, region, keys)
                    : 0;
        printf("%s\t{", line);
        for (int i = 0; i < n; i++)
            printf("%s%s", i > 0 ? "," : "", keys[i]);
        printf("}\n");
    }
    return 0;
}
