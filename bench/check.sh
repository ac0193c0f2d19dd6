#!/usr/bin/env bash
# Whole-process comparison of `ddctl qcow2 check` and `qemu-img check` on
# the same image, in the same run, with hyperfine (median of RUNS runs
# after warm-up): a 10 GiB image whose 163,840 clusters of 64 KiB all hold
# data written by qemu-io, plus a new 2 PiB image (32 MiB of L1 table).
#
# Building the 10 GiB image writes 10 GiB to a temporary directory and
# takes about a minute; set CHECK_IMAGE to an existing image to check that
# one instead (it is left in place).
#
# Usage: bash bench/check.sh [RUNS]     (needs qemu-utils and hyperfine)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
for t in qemu-img qemu-io hyperfine go; do
	command -v "$t" >/dev/null || { echo "bench/check.sh: $t not found" >&2; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/ddctl" ./examples/ddctl
. bench/lib.sh
img=${CHECK_IMAGE:-}
if [[ -z $img ]]; then
	img=$tmp/check-10g.qcow2
	qemu-img create -q -f qcow2 "$img" 10G
	cmds=()
	for i in $(seq 0 9); do cmds+=(-c "write -P $((i + 1)) ${i}G 1G"); done
	qemu-io -f qcow2 "${cmds[@]}" "$img" >/dev/null
fi
empty=$tmp/empty-2p.qcow2
qemu-img create -q -f qcow2 "$empty" 2P
echo "machine: $(nproc) cores, $(uname -sr), $(qemu-img --version | head -1), $(go version | cut -d' ' -f3)"
for f in "$img" "$empty"; do
	name=$(basename "$f")
	echo "$name: $(stat -c %s "$f") bytes, $(du -h "$f" | cut -f1) on disk"
	# Both must report the same thing before their speed means anything.
	want=$(qemu-img check --output=json "$f" | grep -v '"filename"' | tr -d ' \n')
	got=$("$tmp/ddctl" qcow2 check -json "$f" | grep -v '"filename"' | tr -d ' \n')
	if [[ $(tr ',' '\n' <<<"${want//[\{\}]/}" | sort) != $(tr ',' '\n' <<<"${got//[\{\}]/}" | sort) ]]; then
		echo "results differ: qemu-img $want, ddctl $got" >&2
		exit 1
	fi
	hyperfine -N --warmup 3 --runs "$runs" --export-json "$tmp/$name.json" \
		-n "qemu-img check $name" "qemu-img check -q $f" \
		-n "ddctl qcow2 check $name" "$tmp/ddctl qcow2 check $f" >/dev/null
	median_table "$tmp/$name.json"
	echo
done
