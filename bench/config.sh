#!/usr/bin/env bash
# bench/config.sh - the configuration features of issue 11 at CUSTOMERS customers, each figure from a
# function of its own (bench_duplicates below; others are added beside it), against the same statements
# run by pgbench in the same run.
#
# Builds the release binaries, starts a private stack under .bench-config/ and loads, once,
# CUSTOMERS customers (100 reps in 10 teams): half Chinese companies (a three-character name, a trade
# and 有限公司 or a variant), half English ones (a brand of two or three syllables, for half of them a
# second word, a trade, a legal form), each in one of 40 Chinese cities drawn with a skew (Shanghai
# holds about a fifth), with an e-mail and a landline (the area code of its city, written
# 0XX-XXXXXXXX) or a mobile. Every 50th customer is the one
# before it entered again: its name in another legal form, its e-mail in capitals, its number in
# international form (+86 ...), in the same city. Deterministic (md5 of the row number).
#
# bench_duplicates: GET /v1/customers/{id}/duplicates for ids drawn from a fixed sample of SAMPLE
# customers (every CUSTOMERS/SAMPLE-th, half of them twins), one client, for DURATION seconds: the
# API's p50 and p99 (wrk) against the p50 and p99 of the same two statements the API runs for it
# (the record's numbers, then the lookup with the keys the API computes from them), run by pgbench
# with one client on the same sample. The API's statements are read back from PostgreSQL's
# statement log as bench/api-read.sh does (bench/replay.pl): the text the server received, the
# values bound, the protocol. The keys of each sampled record's number are computed once, before
# the run, by bench/phone_keys.c with the API's own normaliser (common/phone.c) and stored in
# bench_dup_sample; pgbench reads the row of its drawn sample position first (one index lookup,
# counted in its latency). The target is a p99 under 20 ms. It stops instead of printing a figure
# when the API answers no candidate for its probe or the reference reads fewer rows than the API
# answered.
#
# Environment: DURATION (20 s per figure), CUSTOMERS (1,000,000), SAMPLE (2,000), STACK_DIR
# (.bench-config), STACK_PG_PORT (55652), STACK_REDIS_PORT (56599), PORT (18191, the API's),
# FIGURES (the functions to run, "duplicates" by default).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-20}
CUSTOMERS=${CUSTOMERS:-1000000}
SAMPLE=${SAMPLE:-2000}
FIGURES=${FIGURES:-duplicates}
export STACK_DIR=${STACK_DIR:-.bench-config} STACK_PG_PORT=${STACK_PG_PORT:-55652}
export STACK_REDIS_PORT=${STACK_REDIS_PORT:-56599}
PORT=${PORT:-18191}
T0=$(date +%s)

CALLER_TTL_MS=$(sed -n 's/^#define CALLER_TTL_MS \([0-9][0-9]*\).*/\1/p' api/callers.c)
[ -n "$CALLER_TTL_MS" ] || { echo "bench: api/callers.c no longer defines CALLER_TTL_MS" >&2; exit 1; }

CLIENTELE_BENCH_DEPS=1 scripts/deps.sh
command -v wrk >/dev/null || { echo "bench: wrk is missing" >&2; exit 1; }
make -s -j"$(nproc)"
BUILD=build
mkdir -p "$BUILD/bench"
${CC:-cc} -std=gnu11 -O2 -Wall -Wextra -Werror -I. -o "$BUILD/bench/phone_keys" bench/phone_keys.c "$BUILD/libcommon.a"

scripts/stack.sh start
API_PID=
stop_api() {
    [ -n "$API_PID" ] || return 0
    kill "$API_PID" 2>/dev/null || true
    wait "$API_PID" 2>/dev/null || true
    API_PID=
}
trap 'stop_api; scripts/stack.sh stop' EXIT

export CLIENTELE_DATABASE_URL="postgresql://clientele@127.0.0.1:$STACK_PG_PORT/clientele"
export CLIENTELE_REDIS_URL="redis://127.0.0.1:$STACK_REDIS_PORT/0"
export CLIENTELE_JWT_SECRET=bench-secret-0123456789abcdefghijklmnop
export CLIENTELE_LISTEN=127.0.0.1:$PORT CLIENTELE_LOG_LEVEL=warn CLIENTELE_STORAGE_DIR=$STACK_DIR/storage
build/clientele-api migrate >/dev/null 2>&1
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$STACK_PG_PORT" -U postgres -d clientele)
PGLOG=$STACK_DIR/postgres.log
"${PSQL[@]}" -c "ALTER ROLE clientele IN DATABASE clientele RESET log_statement"
TMP=$STACK_DIR/scripts
mkdir -p "$TMP"

# --- the customers --------------------------------------------------------------------------------

load_customers() {
    local have
    have=$("${PSQL[@]}" -tAc "SELECT count(*) FROM customers")
    [ "$have" -lt "$CUSTOMERS" ] || return 0
    echo "bench: loading $CUSTOMERS customers (once; kept in $STACK_DIR)"
    "${PSQL[@]}" <<SQL
SET session_replication_role = replica; -- no change-feed rows for the load
SET work_mem = '256MB';
INSERT INTO teams (name) SELECT 'bench-team-' || t FROM generate_series(1, 10) t ON CONFLICT DO NOTHING;
INSERT INTO users (email, name, password_hash, role_id, team_id)
SELECT 'bench.rep' || u || '@bench.invalid', 'Rep ' || u, 'x', (SELECT id FROM roles WHERE name = 'rep'),
       (SELECT id FROM teams WHERE name = 'bench-team-' || (1 + u % 10))
FROM generate_series(1, 100) u ON CONFLICT DO NOTHING;
-- h(i, k): the k-th 30-bit slice of md5(i) as a number.
CREATE FUNCTION pg_temp.h(i bigint, k int) RETURNS bigint LANGUAGE sql IMMUTABLE AS \$\$
    SELECT ('x' || substr(md5(i::text), 1 + 8 * k, 8))::bit(32)::bigint >> 2
\$\$;
CREATE TEMP TABLE w AS SELECT
    string_to_array('华,鑫,贸,易,科,技,宏,达,联,创,盛,泰,恒,信,嘉,德,永,安,金,龙,天,和,瑞,丰,新,源,中,远,海,东,方,明,'
        || '光,美,亚,通,顺,利,发,兴,隆,昌,荣,富,万,福,祥,吉,康,健,宇,星,辰,晨,阳,春,秋,江,河,山,峰,林,森,松,竹,梅,兰,'
        || '云,雨,雪,青,蓝,红,紫,银,铜,铁,钢,石,玉,珠,宝,晶,锦,绣,夏,汉,唐,宋,京,津,粤,浙,苏,鲁,豫,川,湘,鄂,赣,闽,徽,'
        || '晋,冀,辽,黑,陕,甘,宁,滇,贵,桂,琼,凯,博,睿,智,诚,益', ',') AS zh,
    string_to_array('科技,贸易,实业,电子,机械,化工,纺织,物流,建材,食品,医药,生物,软件,信息,能源,汽车,家具,服装,包装,设备', ',')
        AS zh_trade,
    string_to_array('有限公司,股份有限公司,集团有限公司,有限责任公司', ',') AS zh_form,
    string_to_array('b,c,d,f,g,h,j,k,l,m,n,p,r,s,t,v,w,z,br,cr,dr,fr,gr,pr,tr,st,sl,pl,bl,cl,gl,sh,ch,th', ',') AS onset,
    string_to_array('a,e,i,o,u,y,ai,ea,ou,io', ',') AS vowel,
    string_to_array(',n,r,l,s,x,m,t,k,nd,rt,st', ',') AS coda,
    string_to_array('Alpha,Vision,Bridge,Harbor,River,Stone,Peak,Link,Wave,Core,Point,Gate,Field,Hill,Lake,Port,Way,'
        || 'Line,Path,Tech,Data,Soft,Net,Power,Energy,Medical,Health,Auto,Motor,Steel,Metal,Paper,Glass,Plastic,'
        || 'Rubber,Textile,Garment,Shoe,Toy,Furniture,Lighting,Cable,Valve,Pump,Bearing,Tool,Mould,Print,Pack,Solar',
        ',') AS en2,
    string_to_array('Trading,Technology,Electronics,Machinery,Logistics,Textiles,Foods,Chemicals,Materials,Industries,'
        || 'Import & Export,Manufacturing,Engineering,Consulting,Supply Chain,Equipment,Instruments,Pharmaceutical,'
        || 'Biotech,Software', ',') AS en_trade,
    string_to_array('Co., Ltd.|Group|Holdings Ltd.|Company|Corp.|Inc.|Limited|International', '|') AS en_form,
    string_to_array('Shanghai,Beijing,Shenzhen,Guangzhou,Chengdu,Hangzhou,Wuhan,Chongqing,Tianjin,Nanjing,Suzhou,'
        || 'Xi''an,Changsha,Shenyang,Qingdao,Zhengzhou,Dalian,Dongguan,Ningbo,Xiamen,Foshan,Fuzhou,Harbin,Jinan,'
        || 'Wenzhou,Kunming,Hefei,Changchun,Shijiazhuang,Nanning,Taiyuan,Nanchang,Guiyang,Wuxi,Yantai,Lanzhou,'
        || 'Zhuhai,Haikou,Huizhou,Baotou', ',') AS city,
    string_to_array('21,10,755,20,28,571,27,23,22,25,512,29,731,24,532,371,411,769,574,592,757,591,451,531,577,871,'
        || '551,431,311,771,351,791,851,510,535,931,756,898,752,472', ',') AS area;
-- A syllable of an English brand from a number: onset, vowel, coda.
CREATE FUNCTION pg_temp.syllable(w w, x bigint) RETURNS text LANGUAGE sql IMMUTABLE AS \$\$
    SELECT w.onset[1 + x % cardinality(w.onset)] || w.vowel[1 + x / 64 % cardinality(w.vowel)]
           || w.coda[1 + x / 1024 % cardinality(w.coda)]
\$\$;
-- Customer i (twins: every 50th is customer i - 1 again) from the slices of md5(b), b its base.
INSERT INTO customers (kind, name, email, phone, address, status, owner_id, team_id, tags, created_at, updated_at)
SELECT 'company',
       CASE WHEN b % 2 = 0 THEN
           w.zh[1 + pg_temp.h(b, 0) % cardinality(w.zh)] || w.zh[1 + pg_temp.h(b, 1) % cardinality(w.zh)]
           || w.zh[1 + pg_temp.h(b, 2) % cardinality(w.zh)] || w.zh_trade[1 + pg_temp.h(b, 3) % cardinality(w.zh_trade)]
           || w.zh_form[1 + (pg_temp.h(b, 0) / 1000 + t) % cardinality(w.zh_form)]
       ELSE
           initcap(pg_temp.syllable(w, pg_temp.h(b, 0)) || pg_temp.syllable(w, pg_temp.h(b, 1))
                   || CASE WHEN pg_temp.h(b, 2) % 3 = 0 THEN pg_temp.syllable(w, pg_temp.h(b, 2) / 3) ELSE '' END)
           || CASE WHEN pg_temp.h(b, 3) % 2 = 0 THEN ' ' || w.en2[1 + pg_temp.h(b, 2) / 7 % cardinality(w.en2)] ELSE '' END
           || ' ' || w.en_trade[1 + pg_temp.h(b, 3) / 2 % cardinality(w.en_trade)] || ' '
           || w.en_form[1 + (pg_temp.h(b, 0) / 100000 + t) % cardinality(w.en_form)]
       END,
       CASE WHEN t = 0 THEN 'c' || b || '@example.cn' ELSE upper('c' || b || '@example.cn') END,
       CASE WHEN pg_temp.h(b, 1) / 1000 % 3 = 0
            THEN CASE WHEN t = 0 THEN '1' || (3000000000 + pg_temp.h(b, 2) % 1000000000)
                      ELSE '+86 1' || (3000000000 + pg_temp.h(b, 2) % 1000000000) END
            ELSE CASE WHEN t = 0 THEN '0' || w.area[1 + g] || '-' || (20000000 + pg_temp.h(b, 3) % 80000000)
                      ELSE '+86 ' || w.area[1 + g] || ' ' || (20000000 + pg_temp.h(b, 3) % 80000000) END
       END,
       jsonb_build_object('city', w.city[1 + g], 'country', 'CN'),
       'customer', u.id, u.team_id, ARRAY['bench'], now(), now()
FROM (SELECT i, CASE WHEN i % 50 = 0 THEN i - 1 ELSE i END AS b, (i % 50 = 0)::int AS t
      FROM generate_series($have + 1, $CUSTOMERS) i) x
CROSS JOIN w
-- The city: index floor(40 u^2.2) of a uniform u, so the first cities are the large ones.
CROSS JOIN LATERAL (SELECT least(39, floor(40 * power(pg_temp.h(x.b, 3)::float8 / 1073741824.0, 2.2))::int) AS g) c
JOIN users u ON u.email = 'bench.rep' || (1 + x.b % 100) || '@bench.invalid'
ORDER BY x.i;
SQL
    "${PSQL[@]}" -c "VACUUM (ANALYZE) customers" -c "CHECKPOINT"
}

# The API's session settings (common/db.c), so both sides plan alike.
export PGOPTIONS="-c TimeZone=UTC -c jit=off"
PGBENCH=(pgbench -n -h 127.0.0.1 -p "$STACK_PG_PORT" -U postgres)

start_api() {
    build/clientele-api >>"$STACK_DIR/api.log" 2>&1 &
    API_PID=$!
    for _ in $(seq 1 100); do curl -fs "http://$CLIENTELE_LISTEN/readyz" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "bench: the API did not become ready; see $STACK_DIR/api.log" >&2
    exit 1
}

login() {
    curl -fsS -X POST -H 'Content-Type: application/json' \
        -d '{"email":"bench.director@bench.invalid","password":"bench-director-password"}' \
        "http://$CLIENTELE_LISTEN/v1/auth/token" | perl -MJSON::PP -0ne 'print decode_json($_)->{access_token}'
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# capture NAME PATH WARM [value=variable ...]: GET PATH once, right after a warm-up read of WARM that
# fills the caller cache (see bench/api-read.sh), and its pgbench reference from the statement log.
capture() {
    local name=$1 path=$2 warm=$3 off t0 t1 age try
    shift 3
    for try in 1 2 3 4 5; do
        sleep "$(awk -v t="$CALLER_TTL_MS" 'BEGIN { print t / 1000 + 0.05 }')"
        t0=$(now_ms)
        curl -fsS -o /dev/null -H "Authorization: Bearer $TOKEN" "http://$CLIENTELE_LISTEN$warm"
        off=$(stat -c %s "$PGLOG")
        t1=$(now_ms)
        curl -fsS -o "$TMP/$name.json" -w '%{time_pretransfer}\n' -H "Authorization: Bearer $TOKEN" \
            "http://$CLIENTELE_LISTEN$path" >"$TMP/sent"
        tail -c +"$((off + 1))" "$PGLOG" >"$TMP/$name.log"
        age=$(awk -v t0="$t0" -v t1="$t1" '/^[0-9.]+$/ { printf "%d", t1 - t0 + $1 * 1000; exit }' "$TMP/sent")
        [ -n "$age" ] && [ "$age" -lt $((CALLER_TTL_MS / 2)) ] && break
        if [ "$try" = 5 ]; then
            echo "bench: GET $path: the machine is too busy to capture a request with a cached caller" >&2
            exit 1
        fi
    done
    echo "bench: GET $path runs:" >&2
    perl bench/replay.pl "$TMP/$name.log" "$TMP/$name" "$@"
}

# Percentiles of a file of latencies in microseconds, one a line: "p50 p99" in ms.
percentiles() {
    sort -n "$1" | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "- -"; exit }
        i50 = int(NR * 0.50); if (i50 < 1) i50 = 1; i99 = int(NR * 0.99); if (i99 < 1) i99 = 1
        printf "%.2f %.2f\n", v[i50] / 1000, v[i99] / 1000 }'
}

# wrk's percentile ("1.23ms", "850.00us", "1.02s") in ms.
wrk_ms() {
    awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[0-9]s$/ && v !~ /ms$/) n *= 1000;
        printf "%.2f", n }'
}

# --- figures ------------------------------------------------------------------------------------------

bench_duplicates() {
    # The sample: every (CUSTOMERS / SAMPLE)-th customer from the 49th on (a twin, then its original's
    # neighbourhood alternately), with the keys of its number as the API computes them.
    local step=$((CUSTOMERS / SAMPLE)) have
    have=$("${PSQL[@]}" -tAc "SELECT count(*) FROM pg_tables WHERE tablename = 'bench_dup_sample'")
    if [ "$have" = 0 ] || [ "$("${PSQL[@]}" -tAc "SELECT count(*) FROM bench_dup_sample")" != "$SAMPLE" ]; then
        "${PSQL[@]}" -c "DROP TABLE IF EXISTS bench_dup_sample" \
            -c "CREATE TABLE bench_dup_sample (k int PRIMARY KEY, id bigint NOT NULL, keys text NOT NULL)"
        "${PSQL[@]}" -c "COPY (SELECT id, phone FROM customers WHERE deleted_at IS NULL
                               AND (id - (SELECT min(id) FROM customers) + 1) % $step IN (0, 49 % $step)
                               ORDER BY id LIMIT $SAMPLE) TO STDOUT" |
            "$BUILD/bench/phone_keys" CN | awk -F '\t' '{ print NR "\t" $1 "\t" $2 }' |
            "${PSQL[@]}" -c "COPY bench_dup_sample FROM STDIN"
        "${PSQL[@]}" -c "ANALYZE bench_dup_sample"
    fi
    local n probe keys
    n=$("${PSQL[@]}" -tAc "SELECT count(*) FROM bench_dup_sample")
    # The probe: a sampled twin, so the captured request finds candidates.
    read -r probe keys <<<"$("${PSQL[@]}" -tA -F ' ' -c "SELECT s.id, s.keys FROM bench_dup_sample s
        JOIN customers c ON c.id = s.id WHERE c.email::text <> lower(c.email::text) ORDER BY s.k LIMIT 1")"
    [ -n "$probe" ] || { echo "bench: the sample holds no twin" >&2; exit 1; }

    "${PSQL[@]}" -c "ALTER ROLE clientele IN DATABASE clientele SET log_statement = 'all'"
    start_api
    TOKEN=$(login)
    printf '\\set k random(1, %s)\nSELECT id, keys FROM bench_dup_sample WHERE k = :k \\gset\n' "$n" >"$TMP/dup.head"
    capture dup "/v1/customers/$probe/duplicates" "/v1/customers/$probe" "$probe=id+" "$keys=keys"
    stop_api
    "${PSQL[@]}" -c "ALTER ROLE clientele IN DATABASE clientele RESET log_statement"
    local found rows out kv
    found=$(perl -MJSON::PP -0ne 'print scalar @{decode_json($_)->{data}}' "$TMP/dup.json")
    local defs=()
    while IFS= read -r -d '' kv; do defs+=(-D "$kv"); done <"$TMP/dup.vars"
    out=$("${PGBENCH[@]}" -M "$(cat "$TMP/dup.mode")" -t 1 -D "id=$probe" -D "keys=$keys" "${defs[@]}" \
        -f "$TMP/dup.check" clientele 2>&1) || { echo "bench: the reference fails: $out" >&2; exit 1; }
    rows=$(echo "$out" | sed -n 's/.*debug(.*): int \([0-9]*\).*/\1/p' | tail -n 1)
    echo "bench: the API answered $found candidate(s) for customer $probe; its statements return ${rows:-no} row(s)"
    if [ "$found" -eq 0 ] || [ "${rows:-0}" -lt "$found" ]; then
        echo "bench: the reference does not read what the API answered; no figures" >&2
        exit 1
    fi

    # The API, one client, on the same sample.
    local ids
    ids=$("${PSQL[@]}" -tA -c "SELECT string_agg(id::text, ',' ORDER BY k) FROM bench_dup_sample")
    cat >"$TMP/dup.lua" <<LUA
local ids = {$ids}
init = function(args) math.randomseed(42) end
request = function()
    return wrk.format("GET", "/v1/customers/" .. ids[math.random(#ids)] .. "/duplicates",
                      {["Authorization"] = "Bearer $TOKEN"})
end
LUA
    start_api
    out=$(wrk -t1 -c1 -d"${DURATION}s" --timeout 30s --latency -s "$TMP/dup.lua" "http://$CLIENTELE_LISTEN" 2>&1)
    stop_api
    if echo "$out" | grep -q 'Non-2xx\|Socket errors'; then
        echo "bench: wrk saw errors; no figures" >&2
        echo "$out" >&2
        exit 1
    fi
    local a50 a99 rps
    a50=$(wrk_ms "$(echo "$out" | awk '$1 == "50%" {print $2}')")
    a99=$(wrk_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")
    rps=$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')

    # The same statements, pgbench, one client, per-transaction latencies.
    rm -f "$TMP"/duplog*
    out=$("${PGBENCH[@]}" -M "$(cat "$TMP/dup.mode")" -c 1 -j 1 -T "$DURATION" "${defs[@]}" -l \
        --log-prefix="$TMP/duplog" -f "$TMP/dup.sql" clientele 2>&1) ||
        { echo "bench: pgbench failed: $out" >&2; exit 1; }
    cat "$TMP"/duplog* | awk '{ print $3 }' >"$TMP/dup.lat"
    local p50 p99
    read -r p50 p99 <<<"$(percentiles "$TMP/dup.lat")"
    printf '%-72s p50 %6s ms  p99 %6s ms (%s req/s; target p99 < 20 ms: %s)\n' \
        "GET /v1/customers/{id}/duplicates, 1 client, $n sampled customers: API" "$a50" "$a99" "$rps" \
        "$(awk -v a="$a99" 'BEGIN { print (a < 20 ? "met" : "NOT met") }')"
    printf '%-72s p50 %6s ms  p99 %6s ms | API/statements p99 %s\n' \
        "  its two statements (and the sample's row), pgbench -M $(cat "$TMP/dup.mode") -c 1" "$p50" "$p99" \
        "$(awk -v a="$a99" -v b="$p99" 'BEGIN { printf "%.2f", a / b }')"
}

load_customers
if ! "${PSQL[@]}" -tAc "SELECT 1 FROM users WHERE email = 'bench.director@bench.invalid'" | grep -q 1; then
    echo 'bench-director-password' | build/clientele-api user-add bench.director@bench.invalid Director director >/dev/null
fi
echo "bench: $(nproc) cores, $("${PSQL[@]}" -tAc "SELECT count(*) FROM customers WHERE deleted_at IS NULL") customers," \
    "${DURATION}s per figure; load average $(cut -d ' ' -f 1-3 /proc/loadavg)"
for f in $FIGURES; do "bench_$f"; done
echo "bench: done in $(($(date +%s) - T0)) s; load average $(cut -d ' ' -f 1-3 /proc/loadavg)"
