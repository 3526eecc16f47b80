#!/usr/bin/env bash
# Interleaved A/B runs of benchmarks in two checkouts (e.g. `git worktree add /tmp/before <rev>`
# and this one), both with the bench/ files of this checkout copied in, so that only the library
# differs. Each round runs every benchmark on A then B, the next round B then A (ABBA), so drift
# of a shared machine's load falls on both sides alike. Raw outputs go to OUT/<bench>.<rt>.<side>.<round>,
# with the process's CPU time (user + sys, from /usr/bin/time) on the last line.
#   bench/ab_checkouts.sh <dir A> <dir B> <rounds> <out dir>
# Environment: BENCHES (default "stub file_broker redis worker_e2e"), RUNTIMES (default "deno bun").
set -euo pipefail
A=$1 B=$2 ROUNDS=$3 OUT=$4
HERE=$(cd "$(dirname "$0")/.." && pwd)
BENCHES=${BENCHES:-"stub file_broker redis worker_e2e"}
RUNTIMES=${RUNTIMES:-"deno bun"}
PATH=$HERE/node_modules/.bin:$PATH
mkdir -p "$OUT"
for d in "$A" "$B"; do
  [ "$d" = "$HERE" ] || cp "$HERE"/bench/{stub,file_broker,redis,worker_e2e,_common}.ts "$d/bench/"
  [ "$d" = "$HERE" ] || cp -r "$HERE"/bench/fixtures/. "$d/bench/fixtures/"
done
one() { # side dir bench runtime round
  local side=$1 dir=$2 bench=$3 rt=$4 round=$5 file="$OUT/$3.$4.$1.$5"
  local env=(BENCH_RUNS=1)
  case $bench in
    stub) env+=(BENCH_N="${STUB_N:-20000}") ;;
    file_broker) env+=(BENCH_SKIP_REOPEN=1 BENCH_SKIP_KV=1) ;;
    redis) env+=(BENCH_PEERS=0 BENCH_CLI=0 BENCH_ONLY="${REDIS_ONLY:-seq,c64,drain}") ;;
    worker_e2e) env+=(BENCH_N="${E2E_N:-20000}" BENCH_RUNTIME="$rt") ;;
  esac
  local cmd=(deno run -A "bench/$bench.ts")
  if [ "$rt" = bun ] && [ "$bench" != worker_e2e ]; then cmd=(bun "bench/$bench.ts"); fi
  (cd "$dir" && env "${env[@]}" /usr/bin/time -f "cpu %U %S" "${cmd[@]}") >"$file" 2>&1 || echo "FAILED" >>"$file"
  echo "$(date -u +%T) $bench $rt $side round $round: $(tail -1 "$file")"
}
for ((r = 1; r <= ROUNDS; r++)); do
  for bench in $BENCHES; do
    for rt in $RUNTIMES; do
      if ((r % 2)); then one A "$A" "$bench" "$rt" "$r"; one B "$B" "$bench" "$rt" "$r"
      else one B "$B" "$bench" "$rt" "$r"; one A "$A" "$bench" "$rt" "$r"; fi
    done
  done
done
