#!/usr/bin/env bash
# Whole-process benchmark of ddctl probe against openssl s_client, with
# hyperfine (medians), on a redirect chain of three HTTPS servers on
# 127.0.0.1, 127.0.0.2 and 127.0.0.3 (bench/probe: each sends leaf and
# intermediate; hop 1 and 2 answer 302, hop 3 answers 206).
#
#   1 hop    ddctl probe of hop 3 vs one openssl s_client -showcerts of it.
#   3 hops   ddctl probe of hop 1, which follows both redirects, vs three
#            openssl s_client -showcerts runs in sequence, one per hop
#            (s_client neither follows redirects nor sends a request: it
#            only shows each chain, so the operator has to find the hops
#            and run it once per hop).
#
# ddctl probe runs as an operator would run it: with the system roots plus
# -ca-file (the bench CA) and -allow-cidr 127.0.0.0/8, verifying every
# hop's chain, and sending each verified hop its GET for bytes 0-0. A
# variant with -no-system-roots shows the cost of reading the system roots.
# Every command is checked once before it is timed (ddctl must exit 0,
# meaning every hop verified; s_client must print the chain).
#
# Usage: [DDCTL=BINARY] bash bench/probe.sh [RUNS]
#
# RUNS (default 30) is the number of timed runs per command, after 3
# warm-ups. Needs go, hyperfine and openssl. The binaries are built into a
# temporary directory, removed on exit with the servers.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "usage: [DDCTL=BINARY] bash bench/probe.sh [RUNS]" >&2; exit 2; }
for t in go hyperfine openssl; do
	command -v "$t" >/dev/null || { echo "bench/probe.sh: $t not found" >&2; exit 1; }
done

tmp=$(mktemp -d)
server_pid=
cleanup() {
	if [[ -n $server_pid ]]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# hyperfine's commands are shell words: keep paths plain.
if [[ $tmp =~ [^A-Za-z0-9_./-] ]]; then
	echo "bench/probe.sh: use a temporary directory without spaces or quotes ($tmp)" >&2
	exit 1
fi
. bench/lib.sh

if [[ -n ${DDCTL:-} ]]; then
	cp "$DDCTL" "$tmp/ddctl"
else
	go build -o "$tmp/ddctl" ./examples/ddctl
fi
(cd bench/probe && go build -o "$tmp/probe-servers" .)

"$tmp/probe-servers" -dir "$tmp" >"$tmp/servers.out" 2>"$tmp/servers.err" &
server_pid=$!
for ((i = 0; i < 100; i++)); do
	grep -q '^ADDR3=' "$tmp/servers.out" && break
	if ! kill -0 "$server_pid" 2>/dev/null; then
		echo "bench/probe.sh: probe-servers failed:" >&2
		cat "$tmp/servers.err" >&2
		exit 1
	fi
	sleep 0.1
done
get() { sed -n "s/^$1=//p" "$tmp/servers.out"; }
ROOT=$(get ROOT) HOP1=$(get HOP1) HOP3=$(get HOP3)
ADDR1=$(get ADDR1) ADDR2=$(get ADDR2) ADDR3=$(get ADDR3)
[[ -n $ROOT && -n $HOP1 && -n $HOP3 && -n $ADDR3 ]] || {
	echo "bench/probe.sh: probe-servers printed no URLs" >&2
	exit 1
}

probe="$tmp/ddctl probe -ca-file $ROOT -allow-cidr 127.0.0.0/8"
sclient() { echo "openssl s_client -connect $1 -servername mirror.test -showcerts </dev/null"; }
names=() cmds=()
add() { names+=("$1") cmds+=("$2"); }
add "ddctl probe, 1 hop" "$probe $HOP3"
add "ddctl probe -no-system-roots, 1 hop" "$probe -no-system-roots $HOP3"
add "openssl s_client -showcerts, 1 hop" "$(sclient "$ADDR3")"
add "ddctl probe, 3 hops" "$probe $HOP1"
add "openssl s_client -showcerts x3, 3 hops" "$(sclient "$ADDR1"); $(sclient "$ADDR2"); $(sclient "$ADDR3")"

# Check each command once: ddctl must verify every hop, s_client must
# have printed the chain (two certificates per hop).
for i in "${!cmds[@]}"; do
	out=$(bash -c "${cmds[$i]}" 2>&1) || {
		echo "bench/probe.sh: '${names[$i]}' FAILED:" >&2
		echo "$out" | tail -5 >&2
		exit 1
	}
	case ${names[$i]} in
	ddctl*) [[ $out == *"ok: every hop verifies"* ]] || { echo "bench/probe.sh: ${names[$i]} did not verify every hop" >&2; exit 1; } ;;
	*) [[ $(grep -c 'BEGIN CERTIFICATE' <<<"$out") -ge 2 ]] || { echo "bench/probe.sh: ${names[$i]} printed no chain" >&2; exit 1; } ;;
	esac
done

args=()
for i in "${!cmds[@]}"; do
	args+=(-n "${names[$i]}" "${cmds[$i]}")
done
echo "## ddctl probe vs openssl s_client: $runs runs each after 3 warm-ups ($(date +%F\ %T), $(nproc) CPUs)"
echo
hyperfine --shell bash --warmup 3 --runs "$runs" --export-json "$tmp/probe.json" "${args[@]}" >/dev/null
median_table "$tmp/probe.json"
echo
for i in "${!cmds[@]}"; do
	c=${cmds[$i]//$tmp/\$BIN}
	echo "- ${names[$i]}: \`$c\`"
done
