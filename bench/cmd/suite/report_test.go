package main

import (
	"strings"
	"testing"
	"time"

	"github.com/vpnfacade/vpnfacade/bench/load"
)

// fixedReport is a report of a run with every section: one encoding, facade
// and bare saturated in three rounds, paced and one-at-a-time List, direct
// reads, the upstream window, two sizes and profiles.
func fixedReport() *report {
	cfg := config{concurrency: 32, conns: 4, warmup: time.Second, duration: 5 * time.Second, rounds: 3,
		latency: 80 * time.Millisecond, directWarmup: 5 * time.Second, outDir: "out", encodings: []string{"gzip"}}
	r := newReport(cfg)
	r.started = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r.ended = r.started.Add(7*time.Minute + 3400*time.Millisecond)
	r.loadBefore, r.loadAfter, r.cpu = "1.00 2.00 3.00", "4.00 5.00 6.00", "Some CPU"
	// result is ok successful calls in 5 s (ok/5 calls/s), ok%3 errors.
	result := func(ok int64, p50 time.Duration) load.Result {
		return load.Result{Elapsed: 5 * time.Second, OK: ok, Errors: ok % 3, P50: p50, P90: 2 * p50, P99: 4 * p50, Max: 10 * p50}
	}
	for _, protocol := range []string{"grpc", "connect-json"} {
		for target, calls := range map[string]int64{"facade": 45_000, "bare": 50_000} {
			for _, proc := range []string{"Get", "List"} {
				var rounds []measured
				for i := range int64(3) {
					rounds = append(rounds, measured{
						Result:    result(calls+i*1000, time.Duration(300+i*50)*time.Microsecond),
						ServerCPU: time.Duration(40+i) * time.Microsecond, ClientCPU: time.Duration(60+i) * time.Microsecond,
						DuringRefresh: i == 1,
					})
				}
				r.Saturated[scenario{target, proc, protocol, "gzip"}] = rounds
			}
		}
		paced := measured{Result: result(30_000, 1500*time.Microsecond), ServerCPU: 33 * time.Microsecond}
		paced.Rate = 6000
		r.Paced[scenario{"facade", "List", protocol, "gzip"}] = paced
	}
	r.Single[scenario{"facade", "List", "grpc", "gzip"}] = measured{Result: result(4000, 200*time.Microsecond), DuringRefresh: true}
	get := directResult{Result: result(500, 80*time.Millisecond), Calls: 620, Throttled: 100}
	get.ErrorSamples = map[string]int64{"throttled": 7, "RequestLimitExceeded": 3}
	r.Direct[scenario{"direct", "Get", "aws-sdk-go-v2", ""}] = get
	r.Direct[scenario{"direct", "List", "aws-sdk-go-v2", ""}] = directResult{Result: result(400, 90*time.Millisecond), Calls: 410}
	r.Upstream = window{duration: 95 * time.Second, calls: 45, throttled: 1, refreshes: 2, perRefresh: 21, reads: 1_200_000}
	r.Sizes = []sizeResult{
		{Count: 10_000, Refresh: 900 * time.Millisecond, RefreshCPU: 1200 * time.Millisecond, RefreshCalls: 21,
			BaseRSS: 20 << 20, RSS: 30 << 20, HWM: 35 << 20, Heap: 15 << 20,
			WarmStart: 300 * time.Millisecond, WarmListening: 100 * time.Millisecond, WarmCallsRefresh: 21, WarmRefreshed: true, WarmRSS: 25 << 20, PerRefresh: 21},
		{Count: 100_000, Refresh: 12 * time.Second, RefreshCPU: 11 * time.Second, RefreshCalls: 201,
			BaseRSS: 20 << 20, RSS: 500 << 20, HWM: 700 << 20, Heap: 300 << 20,
			WarmStart: 900 * time.Millisecond, WarmListening: 100 * time.Millisecond, WarmCallsBefore: 3, WarmCallsRefresh: 201, WarmRefreshed: true, WarmRSS: 400 << 20, PerRefresh: 201},
	}
	r.Profiles = []string{"facade-get.cpu.pprof", "facade-list.cpu.pprof"}
	return r
}

func TestReportShowsEveryFigure(t *testing.T) {
	text := fixedReport().String()
	for _, want := range []string{
		"# vpnfacade benchmark run, 2026-01-02 03:04 UTC\n\nMachine: ",
		`CPUs (` + "`nproc`" + `), "Some CPU", `,
		"before: 1.00 2.00 3.00; after: 4.00 5.00 6.00.\n",
		"Run took 7m3s.\n",
		"Every scenario: 32 calls in flight (closed loop) over 4 HTTP/2 connections (h2c) for gRPC and Connect, 1s warm-up, 5s measured (direct: 5s warm-up,",
		"Facade and bare: 3 rounds, interleaved;",
		// The median round of three is the second: 46,000 calls in 5 s.
		"\n| bare Get grpc gzip | 10200 | 10000 – 10400 | 0.350 ms | 0.700 ms | 1.4 ms | 3.5 ms | 3 | 41µs | 61µs | 1 of 3 |\n",
		"\n| facade List connect-json gzip | 9200 | 9000 – 9400 | 0.350 ms | 0.700 ms | 1.4 ms | 3.5 ms | 3 | 41µs | 61µs | 1 of 3 |\n" +
			"| direct Get aws-sdk-go-v2 | 100.0 | one round | 80.0 ms | 160.0 ms | 320.0 ms | 800.0 ms | 2 | n/a | n/a | n/a |\n" +
			"| direct List aws-sdk-go-v2 | 80.0 | one round | 90.0 ms | 180.0 ms | 360.0 ms | 900.0 ms | 1 | n/a | n/a | n/a |\n\n## Ratios (median rounds)\n",
		"\n| ratio | gRPC gzip | JSON gzip | target |\n| --- | ---: | ---: | --- |\n",
		"\n| facade Get / bare Get | 0.90 | 0.90 | ≥ 0.8: met |\n",
		"\n| facade List (100 of 10,000, 2 filters) / bare Get | 0.90 | 0.90 | ≥ 0.5: met |\n",
		"\n| same, by server CPU per call: bare Get ÷ facade List | 1.00 | 1.00 |  |\n",
		"\n| facade Get / direct Get (calls/s) | 92 | 92 | ≥ 1000: **missed** |\n",
		"\n| facade List / direct List (calls/s) | 115 | 115 | ≥ 1000: **missed** |\n",
		"\nUpstream calls per read: the facade made 45 EC2 calls while serving 1200000 measured reads (one per 26667 reads); " +
			"direct reads made 1030 calls for 900 successful reads (warm-up included in the calls: 1.14 per read). " +
			"Per read served, the facade calls EC2 about 30519× less.\n",
		"\n| facade List grpc gzip | 6000/s | 6000/s | 1.5 ms | 3.0 ms | 6.0 ms | 15.0 ms | 0 | 33µs | no | **missed** |\n" +
			"| facade List connect-json gzip | 6000/s | 6000/s | 1.5 ms | 3.0 ms | 6.0 ms | 15.0 ms | 0 | 33µs | no | **missed** |\n" +
			"| facade List grpc gzip, one call at a time | — | 800/s | 0.200 ms | 0.400 ms | 0.800 ms | 2.0 ms | 1 | 0µs | yes | (floor) |\n\n",
		"\n## Direct reads: what reached the emulated EC2 (80ms a page; throttle 100 burst, 20/s per region)\n",
		"\n| direct Get aws-sdk-go-v2 | 100.0 | 620 | 100 | 3× RequestLimitExceeded; 7× throttled |\n| direct List aws-sdk-go-v2 | 80.0 | 410 | 0 | none |\n\n",
		"\n45 DescribeClientVpnEndpoints calls (1 throttled) reached the emulator in the 1m35s of facade load " +
			"(and until a refresh in flight at the end was published); 2 refreshes were published meanwhile at 21 calls each (= 42): " +
			"**3 calls are not the published refreshes'**.\n",
		"\n| 10000 | 900.0 ms | 1200.0 ms | 21 | 20.0 MiB | 30.0 MiB | 35.0 MiB | 15.0 MiB | 3.07 KiB | 1.02 KiB | 1.54 KiB |\n",
		"\n| 100000 | 12.0 s | 11.0 s | 201 | 20.0 MiB | 500.0 MiB | 700.0 MiB | 300.0 MiB | 5.12 KiB | 4.92 KiB | 3.07 KiB |\n\n",
		"\n| 10000 | 300.0 ms | 100.0 ms | 25.0 MiB | 0 | 21 |\n| 100000 | 900.0 ms | 100.0 ms | 400.0 MiB | 3 | 201 |\n\n",
		"\n- 10000 endpoints, warm: 0 upstream calls by the first List, 21 by the end of the first refresh (one refresh is 21): all of them its refresher's.\n" +
			"- 10000 endpoints: RSS 3.07 KiB/endpoint met (peak 3.58 KiB); warm start 300.0 ms met.\n" +
			"- 100000 endpoints, warm: 3 upstream calls by the first List, 204 by the end of the first refresh (one refresh is 201): **3 beyond its refresher's**.\n" +
			"- 100000 endpoints: RSS 5.12 KiB/endpoint **missed** (peak 7.17 KiB); warm start 900.0 ms **missed**.\n\n",
		"\nProfiles of vpnfacade under load (in out): facade-get.cpu.pprof, facade-list.cpu.pprof.\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the report lacks %q; it is:\n%s", want, text)
		}
	}
	if !strings.HasSuffix(text, "facade-list.cpu.pprof.\n") {
		t.Errorf("the report does not end with the profiles line:\n%s", text)
	}
	checkMarkdown(t, text)
}

func TestReportLeavesOutWhatWasNotMeasured(t *testing.T) {
	r := fixedReport()
	r.Paced, r.Single, r.Direct = map[scenario]measured{}, map[scenario]measured{}, map[scenario]directResult{}
	r.Upstream, r.Sizes, r.Profiles = window{}, nil, nil
	text := r.String()
	for _, absent := range []string{"## List at half", "## Direct reads", "direct Get", "Upstream calls", "## Refresh, memory", "Targets:", "Profiles"} {
		if strings.Contains(text, absent) {
			t.Errorf("the report shows %q with nothing measured for it:\n%s", absent, text)
		}
	}
	if !strings.HasSuffix(text, "| same, by server CPU per call: bare List ÷ facade List | 1.00 | 1.00 |  |\n\n") {
		t.Errorf("the report does not end after the ratio table:\n%s", text)
	}
	checkMarkdown(t, text)
}

// checkMarkdown checks that the report has no template leftovers, no run of
// blank lines, and that every table row has as many columns as its header.
func checkMarkdown(t *testing.T, text string) {
	t.Helper()
	if strings.Contains(text, "<no value>") || strings.Contains(text, "{{") || strings.Contains(text, "%!") {
		t.Errorf("the report has template or format leftovers:\n%s", text)
	}
	if strings.Contains(text, "\n\n\n") {
		t.Errorf("the report has two blank lines in a row:\n%s", text)
	}
	columns := 0
	for i, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "|") {
			columns = 0
			continue
		}
		n := strings.Count(line, " | ") + 1
		if columns == 0 {
			columns = n
		} else if n != columns {
			t.Errorf("line %d has %d columns, its table %d: %s", i+1, n, columns, line)
		}
	}
}
