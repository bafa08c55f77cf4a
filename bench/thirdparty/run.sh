#!/usr/bin/env bash
# Server CPU per call and Connect JSON throughput, measured by load tools
# that are not ours: ghz (gRPC) and wrk (HTTP/1.1, Connect JSON).
#
#   bench/thirdparty/run.sh [-r rounds] [-d seconds] BINARY [BINARY...]
#
# Each binary is started with --demo over COUNT generated endpoints (default
# 10,000), pinned to CPU 0; the load tool runs pinned to CPU 1. Per round and
# binary, in this order: the gRPC health check, Get by id, the List page of
# 100 with two filters (gRPC; ghz offers gzip, as every grpc-go client does),
# the same List over Connect JSON and over the EC2 Query API with wrk. Server CPU per call is the
# process's utime+stime (/proc/PID/stat) over the run divided by the calls
# that succeeded. Binaries alternate within each round, so that before and
# after see the same machine. Needs ghz (go install
# github.com/bojand/ghz/cmd/ghz@v0.121.0), wrk, jq, curl and taskset.
# Everything listens on 127.0.0.1.
set -euo pipefail

rounds=2
seconds=8
count=${COUNT:-10000}
while getopts "r:d:" opt; do
	case $opt in
	r) rounds=$OPTARG ;;
	d) seconds=$OPTARG ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
if [ $# -eq 0 ]; then
	echo "usage: $0 [-r rounds] [-d seconds] BINARY [BINARY...]" >&2
	exit 2
fi
for tool in ghz wrk jq curl taskset; do
	command -v "$tool" >/dev/null || { echo "$0: $tool is not installed" >&2; exit 1; }
done

work=$(mktemp -d)
server=
cleanup() {
	[ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

list_json='{"maxResults":100,"filters":[{"name":"tag:Environment","values":["production"]},{"name":"transport-protocol","values":["udp"]}]}'
ec2_form='Action=DescribeClientVpnEndpoints&Version=2016-11-15&MaxResults=100&Filter.1.Name=tag:Environment&Filter.1.Value.1=production&Filter.2.Name=transport-protocol&Filter.2.Value.1=udp'
ticks=$(getconf CLK_TCK)

# cpu_us PID: the process's user+system CPU time in microseconds.
cpu_us() {
	awk -v t="$ticks" '{ print ($14 + $15) * 1000000 / t }' "/proc/$1/stat"
}

# start BINARY PORT: starts the binary and waits until it serves its demo data.
start() {
	local bin=$1 port=$2 extra=()
	# Flags that limit one client address exist only in later versions.
	if "$bin" --help 2>&1 | grep -q -- -list-rate-per-address; then
		extra+=(--list-rate-per-address 0 --list-share-per-address 1)
	fi
	taskset -c 0 "$bin" --demo --demo-count "$count" --refresh-interval 1h \
		--listen "127.0.0.1:$port" --log-format json "${extra[@]}" >"$work/server.log" 2>&1 &
	server=$!
	for _ in $(seq 600); do
		if curl -sf -H 'Content-Type: application/json' -d '{"maxResults":5}' \
			"http://127.0.0.1:$port/clientvpn.v1.ClientVpnService/ListClientVpnEndpoints" >"$work/first.json" 2>/dev/null &&
			[ "$(jq '.clientVpnEndpoints | length' "$work/first.json")" -gt 0 ]; then
			return 0
		fi
		sleep 0.2
	done
	echo "$bin did not serve within 120 s; its log:" >&2
	cat "$work/server.log" >&2
	exit 1
}

stop() {
	kill "$server" && wait "$server" 2>/dev/null || true
	server=
}

# ghz_call NAME PORT METHOD DATA: one ghz run; prints the row.
ghz_call() {
	local name=$1 port=$2 method=$3 data=$4 before after ok
	before=$(cpu_us "$server")
	taskset -c 1 ghz --insecure --cpus 1 -c 4 --connections 1 -z "${seconds}s" \
		--call "$method" -d "$data" --format json -o "$work/ghz.json" "127.0.0.1:$port" >/dev/null
	after=$(cpu_us "$server")
	ok=$(jq '.statusCodeDistribution.OK // 0' "$work/ghz.json")
	awk -v n="$name" -v c=$((after - before)) -v ok="$ok" -v s="$seconds" -v total="$(jq .count "$work/ghz.json")" \
		'BEGIN { printf "%-30s %9.0f calls/s  %7.1f µs server CPU per call  (%d of %d OK)\n", n, ok / s, (ok ? c / ok : 0), ok, total }'
}

# wrk_post NAME URL CONTENT-TYPE BODY [LUA]: POSTs BODY with wrk, LUA adding
# to the request; prints the row.
wrk_post() {
	local name=$1 url=$2 type=$3 body=$4 lua=${5:-} before after
	cat >"$work/post.lua" <<EOF
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "$type"
$lua
done = function(summary, latency, requests)
  io.write(string.format("WRK %d %d %d %d\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
EOF
	before=$(cpu_us "$server")
	taskset -c 1 wrk -t1 -c4 -d"${seconds}s" -s "$work/post.lua" "$url" >"$work/wrk.out"
	after=$(cpu_us "$server")
	awk -v n="$name" -v c=$((after - before)) -v s="$seconds" '/^WRK/ {
		ok = $2 - $3
		printf "%-30s %9.0f calls/s  %7.1f µs server CPU per call  (%d errors; p50 %.1f ms, p99 %.1f ms)\n", n, ok / s, (ok ? c / ok : 0), $3, $4 / 1000, $5 / 1000
	}' "$work/wrk.out"
}

echo "# $(date -u +%FT%TZ) · $(nproc) CPUs · load average $(cut -d' ' -f1-3 /proc/loadavg) · $count endpoints · ${seconds} s per run"
port=18480
for round in $(seq "$rounds"); do
	for bin in "$@"; do
		port=$((port + 1))
		start "$bin" "$port"
		id=$(jq -r '.clientVpnEndpoints[0].clientVpnEndpointId' "$work/first.json")
		list_proto=$(echo "$list_json" | jq -c '{max_results: .maxResults, filters: .filters}')
		echo "## round $round · $bin · load average $(cut -d' ' -f1 /proc/loadavg)"
		ghz_call "health (gRPC)" "$port" grpc.health.v1.Health.Check '{}'
		ghz_call "Get (gRPC)" "$port" clientvpn.v1.ClientVpnService.GetClientVpnEndpoint "{\"client_vpn_endpoint_id\":\"$id\"}"
		ghz_call "List 100 of 10k (gRPC, gzip)" "$port" clientvpn.v1.ClientVpnService.ListClientVpnEndpoints "$list_proto"
		wrk_post "List 100 (Connect JSON, wrk)" "http://127.0.0.1:$port/clientvpn.v1.ClientVpnService/ListClientVpnEndpoints" \
			application/json "$list_json"
		# The SDKs' List, for one of the demo's two regions: without an
		# access file the signature is not checked, only its region read.
		wrk_post "List 100 (EC2 Query XML, wrk)" "http://127.0.0.1:$port/" application/x-www-form-urlencoded "$ec2_form" \
			'wrk.headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261202/eu-west-1/ec2/aws4_request, SignedHeaders=host, Signature=00"'
		stop
	done
done
