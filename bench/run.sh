#!/usr/bin/env bash
# Transport benchmark: gapi against wrk (the reference), same run, same server.
#
# nginx (Debian) serves a ~600-byte JSON object over HTTPS with keep-alive on
# 127.0.0.1, pinned to CPU 0; the client under test is pinned to CPU 1. For
# concurrency 1, 16 and 64 (DURATION seconds each, default 10) it measures
# requests/s, client CPU microseconds per request (user+sys from
# /usr/bin/time, the same way for both), client peak RSS, and gapi/wrk.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
DURATION=${DURATION:-10}
CONCS=${CONCS:-"1 16 64"}

SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
need=""
for p in nginx-light wrk time openssl; do dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"; done
if [ -n "$need" ]; then
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need >/dev/null
fi
scripts/deps.sh
[ -x configure ] || ./autogen.sh >/dev/null
mkdir -p _build/release
( cd _build/release && { [ -f Makefile ] || ../../configure --enable-werror CFLAGS="-O2 -g" >/dev/null; } \
  && make -j"$(nproc)" bench/gapi_bench bench/threads_bench bench/soak_bench >/dev/null )
BENCH="$top/_build/release/bench/gapi_bench"

tmp=$(mktemp -d)
chmod 755 "$tmp" # nginx workers run as www-data
trap '[ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null; rm -rf "$tmp"' EXIT

# A CA and a server certificate for 127.0.0.1, made now.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=gapi bench CA" -keyout "$tmp/ca.key" -out "$tmp/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$tmp/srv.key" -out "$tmp/srv.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$tmp/ext"
openssl x509 -req -in "$tmp/srv.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial \
    -days 2 -extfile "$tmp/ext" -out "$tmp/srv.pem" 2>/dev/null

# ~600 bytes of JSON shaped like a Cloud Storage object resource.
mkdir -p "$tmp/www/storage/v1/b/bench/o"
cat >"$tmp/www/storage/v1/b/bench/o/obj.json" <<'JSON'
{"kind":"storage#object","id":"bench/logs/2026/11/24/app.log/1732406400000000","selfLink":"https://www.googleapis.com/storage/v1/b/bench/o/logs%2F2026%2F11%2F24%2Fapp.log","mediaLink":"https://storage.googleapis.com/download/storage/v1/b/bench/o/logs%2F2026%2F11%2F24%2Fapp.log?generation=1732406400000000&alt=media","name":"logs/2026/11/24/app.log","bucket":"bench","generation":"1732406400000000","metageneration":"1","contentType":"text/plain","storageClass":"STANDARD","size":"1048576","md5Hash":"1B2M2Y8AsgTpgAmY7PhCfg==","crc32c":"AAAAAA==","etag":"CIDAhcKN/YkDEAE=","timeCreated":"2026-11-24T00:00:00.000Z"}
JSON
size=$(stat -c %s "$tmp/www/storage/v1/b/bench/o/obj.json")
port=$(( 20000 + RANDOM % 20000 ))
cat >"$tmp/nginx.conf" <<CONF
worker_processes 1;
daemon on;
pid $tmp/nginx.pid;
error_log $tmp/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    gzip off;
    server {
        listen 127.0.0.1:$port ssl;
        ssl_certificate $tmp/srv.pem;
        ssl_certificate_key $tmp/srv.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        root $tmp/www;
        default_type application/json;
        location / { }
    }
}
CONF
taskset -c 0 nginx -c "$tmp/nginx.conf" -p "$tmp" 2>/dev/null
sleep 0.5
url="https://127.0.0.1:$port/storage/v1/b/bench/o/obj.json"
curl_ok=$("$BENCH" -u "$url" -c 1 -d 1 -a "$tmp/ca.pem" | awk '{print $2}')
[ "${curl_ok:-0}" -gt 0 ] || { echo "gapi_bench cannot reach nginx"; exit 1; }

THREADS_BENCH="$top/_build/release/bench/threads_bench"
WHAT=${WHAT:-"transport threads soak"}

transport_bench() {
echo "gapi transport benchmark: nginx HTTPS keep-alive, ${size}-byte JSON, ${DURATION}s per run"
echo "server pinned to CPU 0, client to CPU 1; $(nproc) cores; $(uname -r)"
printf '%-5s %-5s %12s %12s %10s %10s %12s\n' conc client "requests/s" "cpu_us/req" "user_us" "sys_us" "peak_rss_kb"
summary=""
for c in $CONCS; do
    /usr/bin/time -f "%U %S %M" -o "$tmp/time.wrk" taskset -c 1 \
        wrk -t1 -c"$c" -d"${DURATION}s" "$url" >"$tmp/wrk.out" 2>&1
    wn=$(awk '/requests in/ {print $1}' "$tmp/wrk.out")
    wrps=$(awk '/Requests\/sec/ {print $2}' "$tmp/wrk.out")
    read -r wu ws wm <"$tmp/time.wrk"
    wcpu=$(awk -v u="$wu" -v s="$ws" -v n="$wn" 'BEGIN {printf "%.2f", (u+s)*1e6/n}')
    printf '%-5s %-5s %12.0f %12s %10s %10s %12s\n' "$c" wrk "$wrps" "$wcpu" \
        "$(awk -v u="$wu" -v n="$wn" 'BEGIN {printf "%.2f", u*1e6/n}')" \
        "$(awk -v u="$ws" -v n="$wn" 'BEGIN {printf "%.2f", u*1e6/n}')" "$wm"

    /usr/bin/time -f "%U %S %M" -o "$tmp/time.gapi" taskset -c 1 \
        "$BENCH" -u "$url" -c "$c" -d "$DURATION" -a "$tmp/ca.pem" >"$tmp/gapi.out"
    gn=$(awk '{print $2}' "$tmp/gapi.out")
    grps=$(awk '{print $8}' "$tmp/gapi.out")
    read -r gu gs gm <"$tmp/time.gapi"
    gcpu=$(awk -v u="$gu" -v s="$gs" -v n="$gn" 'BEGIN {printf "%.2f", (u+s)*1e6/n}')
    printf '%-5s %-5s %12.0f %12s %10s %10s %12s\n' "$c" gapi "$grps" "$gcpu" \
        "$(awk -v u="$gu" -v n="$gn" 'BEGIN {printf "%.2f", u*1e6/n}')" \
        "$(awk -v u="$gs" -v n="$gn" 'BEGIN {printf "%.2f", u*1e6/n}')" "$gm"
    ratio=$(awk -v g="$grps" -v w="$wrps" 'BEGIN {printf "%.2f", g/w}')
    summary="$summary\nconcurrency $c: gapi/wrk requests/s = $ratio, gapi cpu_us/req = $gcpu (wrk $wcpu)"
done
printf "$summary\n"
}

# Issue 4: worker threads into one client against N threads each with its own
# blocking connection (the pattern Google's Python client prescribes), same
# server, same CPU (all client threads on CPU 1); then the latency a
# cross-thread submit adds.
threads_bench() {
echo
echo "cross-thread benchmark: ${DURATION}s per run; all client threads on CPU 1"
printf '%-8s %-10s %12s %8s %12s %12s\n' threads client "requests/s" conns "cpu_us/req" "peak_rss_kb"
tsummary=""
for t in ${THREADS:-1 4 16}; do
    for m in gapi perthread; do
        line=$(taskset -c 1 "$THREADS_BENCH" -m $m -t "$t" -d "$DURATION" -u "$url" -a "$tmp/ca.pem")
        get() { echo "$line" | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k {print $2}'; }
        printf '%-8s %-10s %12s %8s %12s %12s\n' "$t" "$m" "$(get rps)" "$(get conns)" \
            "$(get cpu_us_per_req)" "$(get rss_kb)"
        eval "rps_$m=$(get rps)"
    done
    tsummary="$tsummary\n$t threads: gapi/perthread requests/s = $(awk -v g="$rps_gapi" -v p="$rps_perthread" 'BEGIN {printf "%.2f", g/p}')"
done
printf "$tsummary\n"
line=$(taskset -c 1 "$THREADS_BENCH" -m latency -u "$url" -a "$tmp/ca.pem")
echo "$line"
}

# Issue 6: SOAK_N requests (default 2M) with 1% injected faults through one
# client against the test server (its own process); exits non-zero when a
# completion is missing or RSS grows >= 5% from the middle to the end.
soak_bench() {
echo
"$top/_build/release/bench/soak_bench" -n "${SOAK_N:-2000000}"
}

for w in $WHAT; do
    case $w in
        transport) transport_bench ;;
        threads) threads_bench ;;
        soak) soak_bench ;;
    esac
done
