#!/usr/bin/env bash
# Whole-process comparison of `ddctl qcow2 create` and `qemu-img create -f
# qcow2` for 1 GiB, 1 TiB and 2 EiB images, in the same run, with hyperfine
# (median of RUNS runs after warm-up). Both write to the same directory;
# each run replaces the previous file, as both tools do.
#
# Usage: bash bench/create.sh [RUNS]     (needs qemu-utils and hyperfine)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-50}
for t in qemu-img hyperfine go; do
	command -v "$t" >/dev/null || { echo "bench/create.sh: $t not found" >&2; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/ddctl" ./examples/ddctl
. bench/lib.sh
echo "machine: $(nproc) cores, $(uname -sr), $(qemu-img --version | head -1), $(go version | cut -d' ' -f3)"
for spec in "1G:" "1T:" "2E:-o cluster_size=2M"; do
	size=${spec%%:*} opts=${spec#*:}
	hyperfine -N --warmup 5 --runs "$runs" --export-json "$tmp/$size.json" \
		-n "qemu-img create $size" "qemu-img create -q -f qcow2 $opts $tmp/q.qcow2 $size" \
		-n "ddctl qcow2 create $size" "$tmp/ddctl qcow2 create -q $opts $tmp/d.qcow2 $size" >/dev/null
	median_table "$tmp/$size.json"
	cmp "$tmp/q.qcow2" "$tmp/d.qcow2" && echo "(identical output: $(stat -c %s "$tmp/d.qcow2") bytes)"
	echo
done
