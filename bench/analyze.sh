#!/usr/bin/env bash
# bench/analyze.sh: the analyzer at scale, beside np-guard's netpol-analyzer.
#
# 1. go test benchmarks: the class matrix for one probe and the whole
#    analysis on 10,000 pods / 500 namespaces / 2,000 policies.
# 2. A scaling series through the CLI, on generated manifests: wall time and
#    peak memory of `rampart analyze` and of np-guard's workload-level
#    connectivity analysis on the same files, np-guard under a time limit.
#
# Usage: make bench-analyze   (or RAMPART_NPGUARD=bin/npguard-oracle bash bench/analyze.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

NPGUARD=${RAMPART_NPGUARD:-bin/npguard-oracle}
LIMIT=${NPGUARD_LIMIT:-300}   # seconds np-guard may take per size
SIZES=${SIZES:-"500 1000 2000 5000 10000"}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "# machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go version | cut -d' ' -f3)"
echo "# $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "## go test benchmarks"
go test -run XXX -bench 'MatrixLarge' -benchtime 3x -benchmem ./internal/policy/ | grep -E '^Benchmark'
go test -run XXX -bench 'AnalyzeLarge' -benchtime 3x -benchmem ./internal/analyze/ | grep -E '^Benchmark'

go build -o "$work/rampart" ./cmd/rampart
echo
echo "## scaling series (pods namespaces policies: seconds, peak MiB)"
printf '%-8s %-6s %-9s %-22s %-22s\n' pods ns policies rampart-analyze np-guard
for pods in $SIZES; do
  ns=$((pods / 20)); pol=$((pods / 5))
  dir="$work/c$pods"
  go run ./bench/gen -seed 1 -namespaces "$ns" -workloads "$pods" -policies "$pol" -out "$dir"
  /usr/bin/time -o "$work/t" -f '%e %M' "$work/rampart" analyze "$dir" -o json --fail-on none >/dev/null 2>"$work/err"
  rs=$(awk '{printf "%.2fs %.0fMiB", $1, $2/1024}' "$work/t")
  if [ -x "$NPGUARD" ]; then
    set +e
    /usr/bin/time -o "$work/t" -f '%e %M' timeout "$LIMIT" "$NPGUARD" --probes 80/TCP "$dir" >/dev/null 2>/dev/null
    code=$?
    set -e
    if [ "$code" -eq 124 ]; then
      ns_out="> ${LIMIT}s (stopped)"
    elif [ "$code" -ne 0 ]; then
      ns_out="failed (exit $code)"
    else
      ns_out=$(awk 'END {printf "%.2fs %.0fMiB", $1, $2/1024}' "$work/t")
    fi
  else
    ns_out="(not built: make deps)"
  fi
  printf '%-8s %-6s %-9s %-22s %-22s\n' "$pods" "$ns" "$pol" "$rs" "$ns_out"
done
