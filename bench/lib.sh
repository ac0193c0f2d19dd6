# Shared by the benchmark scripts in this directory.

# median_table FILE prints hyperfine's JSON export as a markdown table of
# medians (hyperfine's own markdown shows means).
median_table() {
	echo "| command | median ms | min ms | max ms | runs |"
	echo "|---|---:|---:|---:|---:|"
	tr -d '\n' <"$1" | sed 's/": */":/g' | grep -o '"command":"[^"]*"[^]]*' | while read -r r; do
		cmd=$(sed 's/^"command":"\([^"]*\)".*/\1/' <<<"$r")
		get() { grep -o "\"$1\":[0-9.e-]*" <<<"$r" | head -1 | cut -d: -f2; }
		n=$(grep -o '"times":\[[^]]*' <<<"$r" | tr ',' '\n' | wc -l)
		awk -v c="$cmd" -v md="$(get median)" -v mn="$(get min)" -v mx="$(get max)" -v n="$n" \
			'BEGIN { printf "| %s | %.2f | %.2f | %.2f | %d |\n", c, md*1000, mn*1000, mx*1000, n }'
	done
}
