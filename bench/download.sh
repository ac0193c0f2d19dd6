#!/usr/bin/env bash
# Whole-process download benchmarks against the project's faultserver on
# 127.0.0.1, with hyperfine (medians), in three scenarios:
#
#   throttled    1 GiB at 20 MiB/s per connection: ddctl download (8
#                connections, checksum) vs aria2c -x8 -s8 -k1M --checksum vs
#                curl then sha256sum -c vs go-getter (bench/gogetter, its own
#                checksum=sha256). Targets: ddctl at least as fast as
#                aria2c, and at least 6x faster than curl + sha256sum.
#   unthrottled  2 GiB, no rate cap: ddctl download with sha256 vs curl -o
#                alone and sha256sum alone (of the same bytes, in the page
#                cache). Target: ddctl at most 1.15x the slower of the two.
#                Also curl -o /dev/null (what the server can send), curl
#                then sync (ddctl fsyncs its file), ddctl with 1 connection,
#                aria2c, and the server's own CPU time for one download.
#   rss          4 GiB, no rate cap, 16 connections: peak RSS of ddctl and
#                aria2c -x16 -s16 from GNU time (%M), RSS_RUNS runs each.
#                Target: ddctl at most 64 MiB.
#
# Every timed run is a fresh full download: each tool writes into its own
# directory, which is emptied before every run (so no .NAME.ddpart or
# .ddctl, no .aria2 control file, nothing to resume). After a tool's runs
# the script hashes its last output, checks the directory held only that
# file, and fails loudly (exit 1, after the other scenarios) if the SHA-256
# is wrong. If ddctl does not build or its first download fails, the
# baselines still run and the report says so.
#
# Downloads go to a new directory under BENCH_DIR (default $TMPDIR, else
# /var/tmp), which should be a real disk rather than tmpfs; it needs 5 GiB
# free (2 GiB for throttled alone). Binaries are built into a temporary
# directory; both, and the server, are removed on exit.
#
# Usage: [SCENARIOS="throttled unthrottled rss"] [RSS_RUNS=3] [BENCH_DIR=DIR]
#        [DDCTL=BINARY] bash bench/download.sh [RUNS]
#
# DDCTL runs a given ddctl binary instead of building ./examples/ddctl.
#
# RUNS (default 5) is the number of timed runs per command; a throttled run
# takes 7 s (8 connections) to 55 s (one connection). Needs hyperfine,
# aria2c, curl, coreutils, GNU time (/usr/bin/time) and go; building
# bench/gogetter fetches its module's dependencies the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
rss_runs=${RSS_RUNS:-3}
scenarios=${SCENARIOS:-throttled unthrottled rss}
usage() { echo "usage: [SCENARIOS=\"throttled unthrottled rss\"] [RSS_RUNS=N] [BENCH_DIR=DIR] [DDCTL=BINARY] bash bench/download.sh [RUNS]" >&2; exit 2; }
[[ $runs =~ ^[1-9][0-9]*$ && $rss_runs =~ ^[1-9][0-9]*$ ]] || usage
need=1 # GiB free needed besides a margin
for s in $scenarios; do
	case $s in
	throttled) ;;
	unthrottled | rss) need=4 ;;
	*) echo "bench/download.sh: unknown scenario $s" >&2; usage ;;
	esac
done
for t in go hyperfine curl sha256sum aria2c; do
	command -v "$t" >/dev/null || { echo "bench/download.sh: $t not found" >&2; exit 1; }
done
if [[ " $scenarios " == *" rss "* && ! -x /usr/bin/time ]]; then
	echo "bench/download.sh: GNU time (/usr/bin/time) not found" >&2
	exit 1
fi

base=${BENCH_DIR:-${TMPDIR:-/var/tmp}}
[[ -d $base ]] || { echo "bench/download.sh: $base is not a directory" >&2; exit 1; }
tmp=$(mktemp -d)
dir=$(mktemp -d "$base/ddbench.XXXXXX")
server_pid=
cleanup() {
	if [[ -n $server_pid ]]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp" "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# hyperfine -N splits commands into words itself: keep paths plain.
if [[ $tmp$dir =~ [^A-Za-z0-9_./-] ]]; then
	echo "bench/download.sh: use temporary paths without spaces or quotes ($tmp, $dir)" >&2
	exit 1
fi
avail=$(df -P -B1 "$dir" | awk 'NR == 2 { print $4 }')
if ((avail < (need + 1) << 30)); then
	echo "bench/download.sh: $dir has $((avail >> 20)) MiB free; need $(((need + 1) << 10)) MiB" >&2
	exit 1
fi
fstype=$(df -PT "$dir" | awk 'NR == 2 { print $2 }')
if [[ $fstype == tmpfs || $fstype == ramfs ]]; then
	echo "bench/download.sh: warning: $dir is on $fstype, not a disk; set BENCH_DIR" >&2
fi

failed=() # what went wrong, reported at the end
go build -o "$tmp/faultserver" ./internal/faultserver/cmd/faultserver
have_ddctl=true
if [[ -n ${DDCTL:-} ]]; then
	cp "$DDCTL" "$tmp/ddctl"
elif ! go build -o "$tmp/ddctl" ./examples/ddctl 2>"$tmp/ddctl-build.log"; then
	have_ddctl=false
	failed+=("ddctl did not build: $(head -3 "$tmp/ddctl-build.log" | tr '\n' ' ')")
	echo "bench/download.sh: ddctl DID NOT BUILD; running the other tools only:" >&2
	cat "$tmp/ddctl-build.log" >&2
fi
have_gogetter=true
if ! (cd bench/gogetter && go build -o "$tmp/gogetter" .); then
	have_gogetter=false
	failed+=("bench/gogetter did not build")
fi
. bench/lib.sh

# median_of FILE NAME prints the median in seconds of the command named
# NAME in hyperfine's JSON export FILE (nothing if absent).
median_of() {
	tr -d '\n' <"$1" | sed 's/": */":/g' | grep -o '"command":"[^"]*"[^]]*' | while read -r r; do
		if [[ $(sed 's/^"command":"\([^"]*\)".*/\1/' <<<"$r") == "$2" ]]; then
			grep -o '"median":[0-9.e-]*' <<<"$r" | head -1 | cut -d: -f2
		fi
	done
}

# start_server FLAGS... starts faultserver -digest and sets URL, SIZE and
# SHA256 from what it prints.
start_server() {
	"$tmp/faultserver" -digest "$@" >"$tmp/server.out" 2>"$tmp/server.err" &
	server_pid=$!
	local i
	for ((i = 0; i < 1200; i++)); do
		grep -q '^MD5=' "$tmp/server.out" && break
		if ! kill -0 "$server_pid" 2>/dev/null; then
			echo "bench/download.sh: faultserver $* failed:" >&2
			cat "$tmp/server.err" >&2
			exit 1
		fi
		sleep 0.1
	done
	URL=$(sed -n 's/^URL=//p' "$tmp/server.out")
	SIZE=$(sed -n 's/^SIZE=//p' "$tmp/server.out")
	SHA256=$(sed -n 's/^SHA256=//p' "$tmp/server.out")
	[[ $URL == http://127.0.0.1:* && -n $SIZE && ${#SHA256} == 64 ]] || {
		echo "bench/download.sh: faultserver $* printed no URL/SIZE/SHA256" >&2
		exit 1
	}
}

stop_server() {
	kill "$server_pid"
	wait "$server_pid" 2>/dev/null || true
	server_pid=
}

# server_cpu prints the CPU time (user + system) faultserver has used, in
# clock ticks.
server_cpu() { awk '{ print $14 + $15 }' "/proc/$server_pid/stat"; }

# The commands of one hyperfine run: names, commands, and the tool
# directory each writes its out.img to (- for none).
names=() cmds=() tdirs=()
reset_cmds() { names=() cmds=() tdirs=(); }
add_cmd() { names+=("$1") tdirs+=("$2") cmds+=("$3"); }

# fresh T empties tool directory T (and its checks) for a new download.
fresh() { rm -rf "${dir:?}/$1" "$dir/$1.sum" "$dir/$1.files" && mkdir "$dir/$1"; }

# try_ddctl SCENARIO T CMD runs ddctl's command once (a check and a warm-up)
# and adds it to the benchmark if it succeeded.
try_ddctl() {
	$have_ddctl || return 0
	fresh "$2"
	local st=0
	# shellcheck disable=SC2086 # CMD is words, as hyperfine -N splits it
	$3 2>"$tmp/ddctl.err" || st=$?
	rm -rf "${dir:?}/$2"
	if ((st != 0)); then
		echo "bench/download.sh: ddctl download FAILED in $1 (exit $st); left out of the table:" >&2
		tail -5 "$tmp/ddctl.err" >&2
		failed+=("ddctl download failed in $1 (exit $st): $(tail -1 "$tmp/ddctl.err")")
		return 0
	fi
	add_cmd "$4" "$2" "$3"
}

# bench SCENARIO WARMUP runs hyperfine on the added commands, prints the
# table and the commands, and checks every output.
bench() {
	local sc=$1 args=() i t
	for i in "${!cmds[@]}"; do
		t=${tdirs[$i]}
		if [[ $t == - ]]; then
			args+=(--prepare true)
		else
			rm -f "$dir/$t.sum" "$dir/$t.files"
			args+=(--prepare "bash -c 'rm -rf $dir/$t && mkdir $dir/$t'")
		fi
		args+=(-n "${names[$i]}" "${cmds[$i]}")
	done
	# After each command's runs: record what its directory held and the
	# hash of its last output, then remove it (hyperfine takes one --cleanup).
	cat >"$tmp/cleanup.sh" <<-EOF
		shopt -s nullglob
		cd $dir
		for t in */; do
			t=\${t%/}
			ls -A "\$t" >"\$t.files"
			sha256sum "\$t/out.img" >"\$t.sum"
			rm -rf "\$t"
		done
	EOF
	args+=(--cleanup "bash $tmp/cleanup.sh")
	echo "$sc: hyperfine, ${#cmds[@]} commands, $2 warm-up + $runs runs each ($(date +%T))" >&2
	if ! hyperfine -N --warmup "$2" --runs "$runs" --export-json "$tmp/$sc.json" "${args[@]}" >/dev/null; then
		failed+=("hyperfine failed in $sc")
		echo "**$sc: hyperfine FAILED (see stderr)**"
		return 0
	fi
	median_table "$tmp/$sc.json"
	echo
	print_commands ""
	echo
	for i in "${!cmds[@]}"; do
		t=${tdirs[$i]}
		if [[ $t != - ]]; then check_output "$sc" "${names[$i]}" "$t"; fi
	done
}

# check_output SCENARIO NAME T checks the hash and leftovers recorded for
# tool directory T.
# print_commands PREFIX lists the commands run, with the temporary paths
# written as $BIN and $DIR.
print_commands() {
	local i c
	for i in "${!cmds[@]}"; do
		c=${cmds[$i]//$tmp/\$BIN}
		echo "- ${names[$i]}: \`$1${c//$dir/\$DIR}\`"
	done
}

check_output() {
	local got files
	got=$(cut -d' ' -f1 "$dir/$3.sum" 2>/dev/null || true)
	files=$(tr '\n' ' ' <"$dir/$3.files" 2>/dev/null || true)
	if [[ $got != "$SHA256" ]]; then
		echo "**WRONG OUTPUT: $2 in $1: sha256 ${got:-missing}, want $SHA256**"
		failed+=("$2 in $1: wrong sha256 ${got:-missing}")
	elif [[ $files != "out.img " ]]; then
		echo "**LEFTOVERS: $2 in $1 left: $files**"
		failed+=("$2 in $1 left files: $files")
	fi
}

# median prints the median of the sorted numbers on stdin, one a line.
median() { awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# ratio A B prints A/B with two decimals (or n/a).
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "n/a"; else printf "%.2f", a / b }'; }
# verdict RATIO OP LIMIT prints "met" or "NOT met".
verdict() { awk -v r="$1" -v op="$2" -v l="$3" 'BEGIN { if (r == "n/a") print "n/a"; else if ((op == ">=" && r >= l) || (op == "<=" && r <= l)) print "met"; else print "NOT met" }'; }

ddflags="download -quiet -allow-cidr 127.0.0.0/8"

scenario_throttled() {
	echo "## throttled: 1 GiB, 20 MiB/s per connection"
	echo
	start_server -size 1G -rate 20M
	local o=out.img
	reset_cmds
	try_ddctl throttled ddctl "$tmp/ddctl $ddflags -connections 8 -checksum sha256:$SHA256 -o $dir/ddctl/$o $URL" \
		"ddctl download -connections 8 -checksum"
	add_cmd "aria2c -x8 -s8 -k1M --checksum" aria2c \
		"aria2c -q -x8 -s8 -k1M --file-allocation=falloc --checksum=sha-256=$SHA256 -d $dir/aria2c -o $o $URL"
	add_cmd "curl, then sha256sum -c" curl \
		"bash -c 'curl -sSf -o $dir/curl/$o $URL && echo \"$SHA256  $dir/curl/$o\" | sha256sum -c --quiet'"
	if $have_gogetter; then
		add_cmd "go-getter (checksum=sha256)" gogetter "$tmp/gogetter $URL $dir/gogetter/$o $SHA256"
	fi
	bench throttled 0
	stop_server
	local j=$tmp/throttled.json
	[[ -f $j ]] || return 0
	local dd aria curl
	dd=$(median_of "$j" "ddctl download -connections 8 -checksum")
	aria=$(median_of "$j" "aria2c -x8 -s8 -k1M --checksum")
	curl=$(median_of "$j" "curl, then sha256sum -c")
	local r1 r2
	r1=$(ratio "$aria" "$dd") r2=$(ratio "$curl" "$dd")
	echo "| target | ratio | |"
	echo "|---|---:|---|"
	echo "| aria2c / ddctl >= 1 | $r1 | $(verdict "$r1" ">=" 1) |"
	echo "| (curl + sha256sum) / ddctl >= 6 | $r2 | $(verdict "$r2" ">=" 6) |"
	echo
}

scenario_unthrottled() {
	echo "## unthrottled: 2 GiB, no rate cap"
	echo
	start_server -size 2G
	local o=out.img ref=$dir/ref.img
	# The bytes sha256sum reads, left in the page cache; also a warm-up.
	curl -sSf -o "$ref" "$URL"
	[[ $(sha256sum "$ref" | cut -d' ' -f1) == "$SHA256" ]] || {
		echo "bench/download.sh: curl's reference download has the wrong sha256" >&2
		exit 1
	}
	local c0 c1 t0 t1 hz
	hz=$(getconf CLK_TCK)
	c0=$(server_cpu) t0=$(date +%s.%N)
	curl -sSf -o /dev/null "$URL"
	c1=$(server_cpu) t1=$(date +%s.%N)
	awk -v c=$(((c1 - c0))) -v hz="$hz" -v t0="$t0" -v t1="$t1" 'BEGIN {
		printf "faultserver CPU for one curl -o /dev/null of 2 GiB: %.2f s user+sys in %.2f s wall (%.0f%% of one core)\n\n", c / hz, t1 - t0, 100 * c / hz / (t1 - t0) }'
	reset_cmds
	try_ddctl unthrottled ddctl "$tmp/ddctl $ddflags -connections 8 -checksum sha256:$SHA256 -o $dir/ddctl/$o $URL" \
		"ddctl download -connections 8 -checksum"
	try_ddctl unthrottled ddctl1 "$tmp/ddctl $ddflags -connections 1 -checksum sha256:$SHA256 -o $dir/ddctl1/$o $URL" \
		"ddctl download -connections 1 -checksum"
	add_cmd "curl -o FILE" curl "curl -sSf -o $dir/curl/$o $URL"
	add_cmd "sha256sum FILE (page cache)" - "sha256sum $ref"
	# coreutils' sha256sum may not use the CPU's SHA instructions; openssl does.
	if command -v openssl >/dev/null; then
		add_cmd "openssl dgst -sha256 FILE (page cache)" - "openssl dgst -sha256 $ref"
	fi
	add_cmd "curl -o /dev/null" - "curl -sSf -o /dev/null $URL"
	add_cmd "curl -o FILE, then sync FILE" curlsync "bash -c 'curl -sSf -o $dir/curlsync/$o $URL && sync $dir/curlsync/$o'"
	add_cmd "aria2c -x8 -s8 -k1M --checksum" aria2c \
		"aria2c -q -x8 -s8 -k1M --file-allocation=falloc --checksum=sha-256=$SHA256 -d $dir/aria2c -o $o $URL"
	bench unthrottled 1
	stop_server
	rm -f "$ref"
	local j=$tmp/unthrottled.json
	[[ -f $j ]] || return 0
	local dd curl sum big r ossl
	dd=$(median_of "$j" "ddctl download -connections 8 -checksum")
	curl=$(median_of "$j" "curl -o FILE")
	sum=$(median_of "$j" "sha256sum FILE (page cache)")
	big=$(awk -v a="$curl" -v b="$sum" 'BEGIN { print (a > b ? a : b) }')
	r=$(ratio "$dd" "$big")
	echo "| target | ratio | |"
	echo "|---|---:|---|"
	echo "| ddctl / max(curl -o, sha256sum) <= 1.15 | $r | $(verdict "$r" "<=" 1.15) |"
	ossl=$(median_of "$j" "openssl dgst -sha256 FILE (page cache)")
	if [[ -n $ossl ]]; then
		big=$(awk -v a="$curl" -v b="$ossl" 'BEGIN { print (a > b ? a : b) }')
		r=$(ratio "$dd" "$big")
		echo "| (stricter) ddctl / max(curl -o, openssl dgst) <= 1.15 | $r | $(verdict "$r" "<=" 1.15) |"
	fi
	echo
}

scenario_rss() {
	echo "## rss: 4 GiB, no rate cap, 16 connections ($rss_runs runs each, GNU time %M)"
	echo
	start_server -size 4G
	local o=out.img
	reset_cmds
	if $have_ddctl; then
		add_cmd "ddctl download -connections 16 -checksum" ddctl \
			"$tmp/ddctl $ddflags -connections 16 -checksum sha256:$SHA256 -o $dir/ddctl/$o $URL"
	fi
	add_cmd "aria2c -x16 -s16 -k1M --checksum" aria2c \
		"aria2c -q -x16 -s16 -k1M --file-allocation=falloc --checksum=sha-256=$SHA256 -d $dir/aria2c -o $o $URL"
	echo "| command | peak RSS MiB, max | median | min | median wall s |"
	echo "|---|---:|---:|---:|---:|"
	local i k t st rs ws ddrss=
	for i in "${!cmds[@]}"; do
		t=${tdirs[$i]}
		: >"$tmp/rss"
		st=0
		for ((k = 0; k < rss_runs; k++)); do
			fresh "$t"
			# shellcheck disable=SC2086
			/usr/bin/time -a -o "$tmp/rss" -f '%M %e' ${cmds[$i]} 2>"$tmp/rss.err" || { st=$?; break; }
		done
		if ((st != 0)); then
			echo "| ${names[$i]} | FAILED (exit $st) | | | |"
			failed+=("${names[$i]} failed in rss (exit $st): $(grep -v '^Command exited' "$tmp/rss.err" | tail -1 || true)")
			continue
		fi
		ls -A "$dir/$t" >"$dir/$t.files"
		sha256sum "$dir/$t/$o" >"$dir/$t.sum" || true
		rm -rf "${dir:?}/$t"
		grep -E '^[0-9]+ [0-9.]+$' "$tmp/rss" >"$tmp/rss.ok"
		rs=$(cut -d' ' -f1 "$tmp/rss.ok" | sort -n) ws=$(cut -d' ' -f2 "$tmp/rss.ok" | sort -n)
		awk -v n="${names[$i]}" -v max="$(tail -1 <<<"$rs")" -v min="$(head -1 <<<"$rs")" \
			-v med="$(median <<<"$rs")" -v w="$(median <<<"$ws")" \
			'BEGIN { printf "| %s | %.1f | %.1f | %.1f | %.2f |\n", n, max / 1024, med / 1024, min / 1024, w }'
		if [[ $t == ddctl ]]; then ddrss=$(tail -1 <<<"$rs"); fi
	done
	echo
	print_commands "/usr/bin/time -f '%M %e' "
	echo
	for i in "${!cmds[@]}"; do
		if [[ -f $dir/${tdirs[$i]}.sum ]]; then check_output rss "${names[$i]}" "${tdirs[$i]}"; fi
	done
	stop_server
	if [[ -n $ddrss ]]; then
		echo "| target | peak RSS MiB | |"
		echo "|---|---:|---|"
		echo "| ddctl peak RSS <= 64 MiB | $(awk -v r="$ddrss" 'BEGIN { printf "%.1f", r / 1024 }') | $( ((ddrss <= 65536)) && echo met || echo "NOT met") |"
		echo
	fi
}

echo "machine: $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(uname -sr), $(go version | cut -d' ' -f3), $(aria2c --version | head -1), $(curl --version | head -1 | cut -d' ' -f1-2), sha256sum $(sha256sum --version | head -1 | awk '{ print $NF }'), $(openssl version 2>/dev/null | cut -d' ' -f1-2), $(hyperfine --version)"
echo "downloads to: $fstype ($dir); directdl $(git describe --always --dirty 2>/dev/null || echo unknown); $runs runs per command"
echo
for s in $scenarios; do
	"scenario_$s"
done
if ((${#failed[@]})); then
	echo "FAILURES:"
	printf -- '- %s\n' "${failed[@]}"
	exit 1
fi
