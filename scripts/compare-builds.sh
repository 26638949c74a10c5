#!/usr/bin/env bash
# Compares the `guichet serve` of two builds driven by the same client: the
# C client of bench/c/client.c, built from include/guichet.h, waiting in a
# blocking msgrcv(2) and polling with IPC_NOWAIT + sched_yield. Only the
# server differs between the two columns, so a change of the library's
# client cannot hide in the comparison.
#
#   scripts/compare-builds.sh BEFORE_BIN AFTER_BIN [ROUNDS]
#
# For each dispatch mode (thread-per-request, pool:2, sequential), client
# count (1, 4, 16) and wait (block, spin), each build serves a fresh queue
# per cell (RESERVE of 1 seat, one event of 4e9 seats) for 100 ms of
# warm-up and 300 ms measured; rounds are interleaved (before, after,
# before, ...). Prints each cell's median ops/s and min–max per build, and
# the ratio after/before. Needs `cc` (or $CC). Queues are keyed with
# ftok(3) on a file of a private temporary directory and removed by
# SIGTERM to the server (the script checks).
set -euo pipefail

before=${1:?usage: compare-builds.sh BEFORE_BIN AFTER_BIN [ROUNDS]}
after=${2:?usage: compare-builds.sh BEFORE_BIN AFTER_BIN [ROUNDS]}
rounds=${3:-3}
root=$(cd "$(dirname "$0")/.." && pwd)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
${CC:-cc} -O2 -pthread -I "$root/include" -o "$work/client" "$root/bench/c/client.c"
touch "$work/keyfile"

# A key nobody else uses: ftok(3) of a file only this run knows.
key=$(python3 -c "import os,sys; st=os.stat(sys.argv[1]); print(hex(((ord('b') & 0xff) << 24) | ((st.st_dev & 0xff) << 16) | (st.st_ino & 0xffff)))" "$work/keyfile")

queue_id() {
    ipcs -q | awk -v k="$(printf '0x%08x' "$key")" '$1 == k { print $2 }'
}

# cell BIN MODE CLIENTS WAIT -> prints ops/s
cell() {
    local bin=$1 mode=$2 clients=$3 wait=$4 id server out
    "$bin" serve --key "$key" --dispatch "$mode" --event Concert=4000000000 \
        --max-bookings 16777216 >/dev/null 2>&1 &
    server=$!
    for _ in $(seq 1 2000); do
        id=$(queue_id)
        [ -n "$id" ] && break
        sleep 0.005
    done
    [ -n "$id" ] || { kill "$server"; echo "no queue from $bin" >&2; exit 1; }
    out=$(timeout 30 "$work/client" "$id" "$wait" "$clients" 100 300 reserve)
    kill -TERM "$server"
    wait "$server" || true
    [ -z "$(queue_id)" ] || { echo "queue $key left behind" >&2; exit 1; }
    # OPS ERRORS -> ops/s over the 300 ms measured.
    awk '{ printf "%d", $1 / 0.3 }' <<<"$out"
}

stats() { # values... -> "median min max"
    printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { printf "%d %d %d", v[int((NR + 1) / 2)], v[1], v[NR] }'
}

printf '%-20s %7s %5s | %-26s | %-26s | %s\n' mode clients wait "before median (min-max)" "after median (min-max)" "after/before"
for mode in thread-per-request pool:2 sequential; do
    for clients in 1 4 16; do
        for wait in block spin; do
            b=() a=()
            for _ in $(seq 1 "$rounds"); do
                b+=("$(cell "$before" "$mode" "$clients" "$wait")")
                a+=("$(cell "$after" "$mode" "$clients" "$wait")")
            done
            read -r bm bl bh <<<"$(stats "${b[@]}")"
            read -r am al ah <<<"$(stats "${a[@]}")"
            printf '%-20s %7s %5s | %8d (%7d-%7d) | %8d (%7d-%7d) | %.2f\n' \
                "$mode" "$clients" "$wait" "$bm" "$bl" "$bh" "$am" "$al" "$ah" \
                "$(awk -v a="$am" -v b="$bm" 'BEGIN { print (b ? a / b : 0) }')"
        done
    done
done
