#!/usr/bin/env bash
# Whole-process benchmark of a Metalink download from three mirrors, one of
# them serving a bad piece: ddctl download -metalink vs aria2c, with
# hyperfine (medians) and the servers' own byte counts.
#
# Three faultserver processes on 127.0.0.1, 127.0.0.2 and 127.0.0.3 serve
# the same content (same -seed), each capped at SERVER_RATE in all (its
# "uplink", shared by every connection to it). The second one flips 4096
# bytes in the middle of the piece where its first response of a run
# starts (faultserver -corrupt-first-piece, placed anew by POST /_reset
# before every run), so every tool is served one bad piece: every response
# of it that covers those bytes carries them corrupted, with the true ETag
# and size, so only the piece hashes reveal it. bench/mkmetalink writes one Metalink 4 file
# listing the three (priorities 1, 2, 3) with the whole-file SHA-256 and
# SHA-256 piece hashes of PIECE bytes; every tool downloads from it:
#
#   ddctl     ddctl download -connections 12 -metalink FILE -o DIR -json (-quiet
#             -allow-cidr 127.0.0.0/8: loopback is refused by default)
#   aria2c    aria2c --metalink-file FILE -x4 -s12 ...: 4 connections per
#             mirror, 12 in all, as ddctl uses
#   aria2c    the same with aria2c's default -x1 -s5, for comparison
#
# For each tool, one checked run comes first: the servers' counters are
# reset (POST /_reset), the tool runs into an empty directory, and the
# script records its exit status, its wall time, whether the output's
# SHA-256 is the metalink's, what else it left, the bytes the three
# servers sent (GET /_stats; bytes written to the socket, so a connection
# a tool drops mid-response still counts what was in flight), the requests
# each mirror got, and how many responses of the corrupting mirror carried
# the bad bytes (from its request log). Then hyperfine times RUNS more runs
# (each into an emptied directory; failing runs are timed too and counted).
# A tool that fails, or gets the file wrong, is reported in the table, not
# fatal. If ddctl does not build, or has no -metalink flag yet, the script
# says so and runs aria2c alone.
#
# Downloads go to a new directory under BENCH_DIR (default $TMPDIR, else
# /var/tmp), which needs SIZE plus 1 GiB free. Binaries are built into a
# temporary directory; both, and the servers, are removed on exit.
#
# Usage: [SIZE=1GiB] [PIECE=4MiB] [SERVER_RATE=15MiB] [SEED=7] [BENCH_DIR=DIR]
#        [DDCTL=BINARY] [RUNS=3] bash bench/metalink.sh [RUNS]
#
# Sizes take bytes or K, M, G suffixes (powers of 1024, optionally with B
# or iB). SIZE=64MiB makes a quick trial. A 1 GiB download at 3 x 15 MiB/s
# takes about 25 s, so the default runs take about 6 minutes. Needs go,
# hyperfine, aria2c, curl and coreutils.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-${RUNS:-3}}
seed=${SEED:-7}
rate=${SERVER_RATE:-15MiB}
usage() { echo "usage: [SIZE=BYTES] [PIECE=BYTES] [SERVER_RATE=BYTES] [SEED=N] [BENCH_DIR=DIR] [DDCTL=BINARY] [RUNS=N] bash bench/metalink.sh [RUNS]" >&2; exit 2; }

# to_bytes SIZE prints SIZE in bytes (suffixes K, M, G, T; B, iB).
to_bytes() {
	local v=${1^^} shift=0
	v=${v%B}
	v=${v%I}
	case $v in
	*K) shift=10 ;;
	*M) shift=20 ;;
	*G) shift=30 ;;
	*T) shift=40 ;;
	esac
	((shift == 0)) || v=${v%?}
	[[ $v =~ ^[0-9]{1,12}$ ]] || return 1
	echo $((10#$v << shift))
}
[[ $runs =~ ^[1-9][0-9]*$ && $seed =~ ^[0-9]+$ ]] || usage
size=$(to_bytes "${SIZE:-1GiB}") || { echo "bench/metalink.sh: bad SIZE ${SIZE:-}" >&2; usage; }
piece=$(to_bytes "${PIECE:-4MiB}") || { echo "bench/metalink.sh: bad PIECE ${PIECE:-}" >&2; usage; }
to_bytes "$rate" >/dev/null || { echo "bench/metalink.sh: bad SERVER_RATE $rate" >&2; usage; }
((size > 0 && piece > 0)) || { echo "bench/metalink.sh: SIZE and PIECE must be more than 0" >&2; usage; }
for t in go hyperfine aria2c curl sha256sum; do
	command -v "$t" >/dev/null || { echo "bench/metalink.sh: $t not found" >&2; exit 1; }
done

base=${BENCH_DIR:-${TMPDIR:-/var/tmp}}
[[ -d $base ]] || { echo "bench/metalink.sh: $base is not a directory" >&2; exit 1; }
tmp=$(mktemp -d)
dir=$(mktemp -d "$base/ddmeta.XXXXXX")
server_pids=()
cleanup() {
	local p
	for p in "${server_pids[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$tmp" "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# hyperfine -N splits commands into words itself: keep paths plain.
if [[ $tmp$dir =~ [^A-Za-z0-9_./-] ]]; then
	echo "bench/metalink.sh: use temporary paths without spaces or quotes ($tmp, $dir)" >&2
	exit 1
fi
avail=$(df -P -B1 "$dir" | awk 'NR == 2 { print $4 }')
if ((avail < size + (1 << 30))); then
	echo "bench/metalink.sh: $dir has $((avail >> 20)) MiB free; need $(((size >> 20) + 1024)) MiB" >&2
	exit 1
fi
fstype=$(df -PT "$dir" | awk 'NR == 2 { print $2 }')
if [[ $fstype == tmpfs || $fstype == ramfs ]]; then
	echo "bench/metalink.sh: warning: $dir is on $fstype, not a disk; set BENCH_DIR" >&2
fi

failed=() # what went wrong, reported at the end
go build -o "$tmp/faultserver" ./internal/faultserver/cmd/faultserver
go build -o "$tmp/mkmetalink" ./bench/mkmetalink
ddctl_status="ok"
if [[ -n ${DDCTL:-} ]]; then
	cp "$DDCTL" "$tmp/ddctl"
elif ! go build -o "$tmp/ddctl" ./examples/ddctl 2>"$tmp/ddctl-build.log"; then
	ddctl_status="did not build: $(head -3 "$tmp/ddctl-build.log" | tr '\n' ' ')"
	echo "bench/metalink.sh: ddctl DID NOT BUILD; running aria2c only:" >&2
	cat "$tmp/ddctl-build.log" >&2
fi
. bench/lib.sh

# The corrupted bytes: 4096 (or the whole piece, if shorter) in the middle
# of the piece where mirror 2's first response of a run starts, so that
# every tool gets one bad piece from it, whichever part of the file it asks
# mirror 2 for first (POST /_reset before each run places them anew).
clen=$((piece < 4096 ? piece : 4096))
bad_at=$(((piece - clen) / 2))

# start_server N FLAGS... starts faultserver on 127.0.0.N and sets
# urls[N] and ctls[N] (its base URL, for /_stats and /_reset).
urls=() ctls=()
start_server() {
	local n=$1 i
	shift
	"$tmp/faultserver" -addr "127.0.0.$n" -seed "$seed" -size "$size" -server-rate "$rate" -control \
		-path /out.img "$@" >"$tmp/server$n.out" 2>"$tmp/server$n.err" &
	server_pids+=($!)
	for ((i = 0; i < 100; i++)); do
		grep -qs '^SIZE=' "$tmp/server$n.out" && break
		if ! kill -0 "${server_pids[-1]}" 2>/dev/null; then
			echo "bench/metalink.sh: faultserver on 127.0.0.$n failed:" >&2
			cat "$tmp/server$n.err" >&2
			exit 1
		fi
		sleep 0.1
	done
	urls[n]=$(sed -n 's/^URL=//p' "$tmp/server$n.out")
	[[ ${urls[n]} == http://127.0.0.$n:*/out.img ]] || {
		echo "bench/metalink.sh: faultserver on 127.0.0.$n printed no URL" >&2
		exit 1
	}
	ctls[n]=${urls[n]%/out.img}
}
start_server 1
# -v logs every request of the corrupting mirror, with fault=corrupt on
# those that sent the bad bytes.
start_server 2 -corrupt-first-piece "$piece" -corrupt-at "$bad_at" -corrupt-len "$clen" -v
start_server 3

meta=$tmp/bench.meta4
"$tmp/mkmetalink" -seed "$seed" -size "$size" -piece "$piece" -name out.img -o "$meta" "${urls[1]}" "${urls[2]}" "${urls[3]}"
SHA256=$(sed -n 's/.*<hash type="sha-256">\([0-9a-f]\{64\}\)<.*/\1/p' "$meta" | head -1)
[[ ${#SHA256} == 64 ]] || { echo "bench/metalink.sh: no sha-256 in $meta" >&2; exit 1; }

reset_stats() {
	local n
	for n in 1 2 3; do curl -sSf -X POST "${ctls[n]}/_reset"; done
}
# stat_of N KEY prints counter KEY of mirror N.
stat_of() { curl -sSf "${ctls[$1]}/_stats" | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"; }
corrupt_count() { grep -c 'fault=corrupt' "$tmp/server2.err" || true; }

# fresh T empties tool directory T for a new download.
fresh() { rm -rf "${dir:?}/$1" && mkdir "$dir/$1"; }

# Results of the checked runs, by tool directory.
declare -A r_exit r_wall r_hash r_left r_bytes r_reqs r_bad r_note r_timed

# checked_run T CMD runs CMD once into tool directory T and records how it
# went.
checked_run() {
	local t=$1 cmd=$2 st=0 c0 t0 t1 got
	fresh "$t"
	reset_stats
	c0=$(corrupt_count)
	t0=$(date +%s.%N)
	# shellcheck disable=SC2086 # CMD is words, as hyperfine -N splits it
	$cmd >"$tmp/$t.out" 2>"$tmp/$t.err" || st=$?
	t1=$(date +%s.%N)
	r_exit[$t]=$st
	r_wall[$t]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
	got=$(sha256sum "$dir/$t/out.img" 2>/dev/null | cut -d' ' -f1 || true)
	if [[ -z $got ]]; then
		r_hash[$t]="no file"
	elif [[ $got == "$SHA256" ]]; then
		r_hash[$t]="right"
	else
		r_hash[$t]="WRONG"
	fi
	r_left[$t]=$(ls -A "$dir/$t" | grep -vx out.img | tr '\n' ' ' || true)
	r_bytes[$t]=$(($(stat_of 1 bytes_served) + $(stat_of 2 bytes_served) + $(stat_of 3 bytes_served)))
	r_reqs[$t]="$(stat_of 1 requests) / $(stat_of 2 requests) / $(stat_of 3 requests)"
	r_bad[$t]=$(($(corrupt_count) - c0))
	rm -rf "${dir:?}/$t"
}

names=() cmds=() tdirs=()
add_cmd() { names+=("$1") tdirs+=("$2") cmds+=("$3"); }

dd="$tmp/ddctl download -quiet -allow-cidr 127.0.0.0/8 -connections 12 -metalink $meta -o $dir/ddctl -json"
aria="aria2c --metalink-file $meta --allow-overwrite=true --file-allocation=falloc --auto-file-renaming=false --max-tries=5 --console-log-level=warn --summary-interval=0"
all_names=("ddctl download -metalink" "aria2c -x4 -s12" "aria2c (default -x1 -s5)")
all_tdirs=(ddctl aria2c aria2cdef)
all_cmds=("$dd" "$aria -d $dir/aria2c -x4 -s12" "$aria -d $dir/aria2cdef")

echo "machine: $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(uname -sr), $(go version | cut -d' ' -f3), $(aria2c --version | head -1), $(hyperfine --version)"
echo "downloads to: $fstype ($dir); directdl $(git describe --always --dirty 2>/dev/null || echo unknown); $runs timed runs per tool after one checked run"
echo
echo "## metalink: $((size >> 20)) MiB from 3 mirrors at $rate each, piece $((piece >> 10)) KiB"
echo
echo "Mirror 2 (127.0.0.2) flips $clen bytes in the middle of the piece where its first response of a run starts."
echo

for i in "${!all_cmds[@]}"; do
	t=${all_tdirs[$i]}
	if [[ $t == ddctl && $ddctl_status != ok ]]; then
		continue
	fi
	echo "checked run: ${all_names[$i]} ($(date +%T))" >&2
	checked_run "$t" "${all_cmds[$i]}"
	if [[ $t == ddctl && ${r_exit[$t]} != 0 ]]; then
		if grep -q 'flag provided but not defined: -metalink' "$tmp/ddctl.err"; then
			ddctl_status="has no -metalink flag yet"
		else
			ddctl_status="failed (exit ${r_exit[$t]}): $(tail -1 "$tmp/ddctl.err")"
		fi
		echo "bench/metalink.sh: ddctl download -metalink FAILED; aria2c only:" >&2
		tail -5 "$tmp/ddctl.err" >&2
		continue
	fi
	if [[ $t == ddctl ]]; then
		r_note[$t]="ddctl's bytes_transferred: $(sed -n 's/.*"bytes_transferred": *\([0-9]*\).*/\1/p' "$tmp/ddctl.out" | head -1)"
	elif ((r_exit[$t] != 0)); then
		r_note[$t]="$(cat "$tmp/$t.out" "$tmp/$t.err" | grep -i 'error\|fail\|checksum' | tail -1 | cut -c1-160 || true)"
	fi
	add_cmd "${all_names[$i]}" "$t" "${all_cmds[$i]}"
done

if [[ $ddctl_status != ok ]]; then
	echo "**ddctl download -metalink: $ddctl_status; not in the table.**"
	echo
	failed+=("ddctl download -metalink: $ddctl_status")
fi

json=$tmp/metalink.json
if ((${#cmds[@]})); then
	args=()
	for i in "${!cmds[@]}"; do
		args+=(--prepare "bash -c 'rm -rf $dir/${tdirs[$i]} && mkdir $dir/${tdirs[$i]} && for c in ${ctls[*]}; do curl -sSf -X POST \$c/_reset; done'" -n "${names[$i]}" "${cmds[$i]}")
	done
	echo "hyperfine: ${#cmds[@]} commands, $runs runs each ($(date +%T))" >&2
	# -i: a failing run is timed and counted, not fatal.
	if ! hyperfine -N -i --runs "$runs" --cleanup "rm -rf $dir/ddctl $dir/aria2c $dir/aria2cdef" \
		--export-json "$json" "${args[@]}" >/dev/null; then
		failed+=("hyperfine failed")
		json=
	fi
fi

# hf NAME FIELD prints a statistic (seconds) of command NAME from the
# hyperfine export; hf_fails NAME how many of its runs exited non-zero.
hf_record() {
	[[ -n $json && -f $json ]] || return 0
	tr -d '\n' <"$json" | sed 's/": */":/g; s/, */,/g' | grep -o '"command":"[^"]*"[^]]*\][^]]*\]' | while read -r r; do
		[[ $(sed 's/^"command":"\([^"]*\)".*/\1/' <<<"$r") == "$1" ]] && echo "$r"
	done
}
hf() { grep -o "\"$2\":[0-9.e-]*" <<<"$(hf_record "$1")" | head -1 | cut -d: -f2; }
hf_fails() {
	local codes
	codes=$(hf_record "$1" | grep -o '"exit_codes":\[[^]]*' | cut -d[ -f2 | tr -d ' ') || true
	[[ -n $codes ]] || return 0
	tr ',' '\n' <<<"$codes" | grep -cv '^0$' || true
}

echo "| tool | exit | sha256 | wall s | MiB served | served / size | requests m1 / m2 / m3 | bad responses | median s | min s | max s | failed runs |"
echo "|---|---:|---|---:|---:|---:|---|---:|---:|---:|---:|---:|"
for i in "${!cmds[@]}"; do
	t=${tdirs[$i]} n=${names[$i]}
	awk -v n="$n" -v e="${r_exit[$t]}" -v h="${r_hash[$t]}" -v w="${r_wall[$t]}" -v b="${r_bytes[$t]}" -v s="$size" \
		-v q="${r_reqs[$t]}" -v bad="${r_bad[$t]}" -v md="$(hf "$n" median)" -v mn="$(hf "$n" min)" -v mx="$(hf "$n" max)" \
		-v f="$(hf_fails "$n")" -v runs="$runs" 'BEGIN {
		printf "| %s | %s | %s | %s | %.1f | %.3f | %s | %s | %s | %s | %s | %s/%d |\n", n, e, h, w, b / 1048576, b / s, q, bad,
			md == "" ? "n/a" : sprintf("%.2f", md), mn == "" ? "n/a" : sprintf("%.2f", mn), mx == "" ? "n/a" : sprintf("%.2f", mx), f == "" ? "?" : f, runs }'
done
echo
echo "exit, sha256, wall, bytes, requests and bad responses are of the checked run; median, min, max and failed runs of hyperfine's $runs runs."
echo "\"bad responses\": responses of mirror 2 that carried the flipped bytes; the piece must then come again, from anywhere."
echo
for i in "${!cmds[@]}"; do
	t=${tdirs[$i]}
	c=${cmds[$i]//$tmp/\$BIN}
	echo "- ${names[$i]}: \`${c//$dir/\$DIR}\`"
	[[ -z ${r_left[$t]} ]] || echo "  - left beside out.img: ${r_left[$t]}"
	[[ -z ${r_note[$t]:-} ]] || echo "  - ${r_note[$t]}"
	if [[ ${r_hash[$t]} != right ]]; then
		failed+=("${names[$i]}: output ${r_hash[$t]} (exit ${r_exit[$t]})")
	fi
done
echo
if ((${#failed[@]})); then
	echo "FAILURES:"
	printf -- '- %s\n' "${failed[@]}"
	# A baseline getting the file wrong is a result; ddctl doing so, or not
	# running, is a failure of the benchmark.
	for f in "${failed[@]}"; do
		[[ $f == ddctl* || $f == hyperfine* ]] && exit 1
	done
fi
exit 0
