package main

import (
	"cmp"
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/vpnfacade/vpnfacade/bench/load"
	"github.com/vpnfacade/vpnfacade/bench/workload"
)

// report is everything the suite measured.
type report struct {
	cfg                   config
	started, ended        time.Time
	loadBefore, loadAfter string
	cpu                   string

	Saturated map[scenario][]measured
	Paced     map[scenario]measured
	Single    map[scenario]measured // one call at a time
	Direct    map[scenario]directResult
	Upstream  window
	Sizes     []sizeResult
	Profiles  []string

	pagesPerRefresh int64
}

// directResult is a direct scenario and what reached the emulator.
type directResult struct {
	load.Result
	// Calls and Throttled count DescribeClientVpnEndpoints requests the
	// emulator received (warm-up included) and refused.
	Calls, Throttled int64
}

// window is what reached upstream while the facade was under load.
type window struct {
	logFrom    int
	duration   time.Duration
	calls      int64
	throttled  int64
	refreshes  int
	perRefresh int64
	reads      int64 // successful facade calls measured in the window
}

// sizeResult is the refresh, memory and warm start at one size.
type sizeResult struct {
	Count        int
	Refresh      time.Duration // first refresh, from the log
	RefreshCPU   time.Duration // the facade's CPU time from listening to the first publish
	RefreshCalls int64
	BaseRSS      int64 // when listening, before any data
	RSS, HWM     int64 // 2 s after serving
	Heap         int64 // live heap after a forced GC, then
	// Warm start: exec to first successful List, with data in Redis.
	WarmStart, WarmListening time.Duration
	WarmCallsBefore          int64 // upstream calls by the first List
	WarmCallsRefresh         int64 // upstream calls of the new process's first refresh
	WarmRefreshed            bool
	WarmRSS                  int64
	PerRefresh               int64 // calls one refresh makes
}

func newReport(cfg config) *report {
	return &report{
		cfg: cfg, started: time.Now(), loadBefore: loadAvg(), cpu: cpuModel(),
		Saturated: map[scenario][]measured{},
		Paced:     map[scenario]measured{},
		Single:    map[scenario]measured{},
		Direct:    map[scenario]directResult{},
	}
}

func (r *report) finish() {
	r.ended = time.Now()
	r.loadAfter = loadAvg()
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "?"
	}
	for line := range strings.Lines(string(b)) {
		if name, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return "?"
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func ms(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < time.Millisecond:
		return fmt.Sprintf("%.3f ms", float64(d)/1e6)
	case d < 10*time.Second:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

// String formats the report as Markdown.
func (r *report) String() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	c := r.cfg
	p("# vpnfacade benchmark run, %s", r.started.Format("2006-01-02 15:04 MST"))
	p("")
	p("Machine: %d CPUs (`nproc`), %q, %s %s/%s. Load average (1, 5, 15 min) before: %s; after: %s.",
		runtime.NumCPU(), r.cpu, runtime.Version(), runtime.GOOS, runtime.GOARCH, r.loadBefore, cmp.Or(r.loadAfter, "?"))
	p("Load generator, servers, Redis and the EC2 emulator share these CPUs. Run took %s.", r.ended.Sub(r.started).Round(time.Second))
	p("")
	p("Every scenario: %d calls in flight (closed loop) over %d HTTP/2 connections (h2c) for gRPC and Connect, %s warm-up, %s measured "+
		"(direct: %s warm-up, to spend EC2's burst first). Facade and bare: %d rounds, interleaved; the median round is shown, with the range of "+
		"throughput across rounds. Encoding gzip: clients accept gzip (connect-go's default) and connect-go compresses every response; "+
		"identity: they do not. Latencies are of successful calls.",
		c.concurrency, c.conns, c.warmup, c.duration, max(c.warmup, c.directWarmup), c.rounds)
	p("")

	p("## Saturated throughput and latency")
	p("")
	p("Throughput and latencies are the median round's (by throughput); CPU per call is the median over the rounds. " +
		"The last column counts the rounds a refresh of the facade overlapped: it takes CPU from whatever runs then, bare included.")
	p("")
	p("| scenario | calls/s | range over rounds | p50 | p90 | p99 | max | errors | server CPU / call | client CPU / call | rounds during a refresh |")
	p("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	keys := slices.SortedFunc(maps.Keys(r.Saturated), func(a, b scenario) int {
		return cmp.Or(cmp.Compare(a.Encoding, b.Encoding), cmp.Compare(a.Proc, b.Proc), cmp.Compare(b.Protocol, a.Protocol), cmp.Compare(a.Target, b.Target))
	})
	for _, sc := range keys {
		rounds := r.Saturated[sc]
		m := median(rounds)
		lo, hi := rounds[0].Throughput(), rounds[0].Throughput()
		var errs int64
		for _, x := range rounds {
			lo, hi = min(lo, x.Throughput()), max(hi, x.Throughput())
			errs += x.Errors
		}
		server, client := medianCPU(rounds)
		during := 0
		for _, x := range rounds {
			if x.DuringRefresh {
				during++
			}
		}
		p("| %s | %.0f | %.0f – %.0f | %s | %s | %s | %s | %d | %s | %s | %d of %d |", sc, m.Throughput(), lo, hi, ms(m.P50), ms(m.P90), ms(m.P99), ms(m.Max), errs,
			fmtMicros(server), fmtMicros(client), during, len(rounds))
	}
	for _, sc := range slices.SortedFunc(maps.Keys(r.Direct), func(a, b scenario) int { return cmp.Compare(a.Proc, b.Proc) }) {
		d := r.Direct[sc]
		p("| %s | %.1f | one round | %s | %s | %s | %s | %d | n/a | n/a | n/a |", sc, d.Throughput(), ms(d.P50), ms(d.P90), ms(d.P99), ms(d.Max), d.Errors)
	}
	p("")

	thr := func(target, proc, protocol, enc string) float64 {
		return median(r.Saturated[scenario{target, proc, protocol, enc}]).Throughput()
	}
	// cpu is the median server CPU per call over the rounds.
	cpu := func(target, proc, protocol, enc string) float64 {
		server, _ := medianCPU(r.Saturated[scenario{target, proc, protocol, enc}])
		return float64(server)
	}
	ratio := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	p("## Ratios (median rounds)")
	p("")
	var head, sep string
	for _, enc := range c.encodings {
		head += " | gRPC " + enc + " | JSON " + enc
		sep += " | ---: | ---:"
	}
	p("| ratio%s | target |", head)
	p("| ---%s | --- |", sep)
	row := func(name string, target float64, comment string, value func(protocol, enc string) float64, format string) {
		line := "| " + name
		verdict := comment
		for _, enc := range c.encodings {
			for _, protocol := range []string{workload.GRPC, workload.ConnectJSON} {
				v := value(protocol, enc)
				line += " | " + fmt.Sprintf(format, v)
				if target > 0 && v < target {
					verdict = comment + ": **missed**"
				}
			}
		}
		if target > 0 && verdict == comment {
			verdict = comment + ": met"
		}
		p("%s | %s |", line, verdict)
	}
	row("facade Get / bare Get", 0.8, "≥ 0.8", func(pr, enc string) float64 {
		return ratio(thr("facade", "Get", pr, enc), thr("bare", "Get", pr, enc))
	}, "%.2f")
	row("facade List (100 of 10,000, 2 filters) / bare Get", 0.5, "≥ 0.5", func(pr, enc string) float64 {
		return ratio(thr("facade", "List", pr, enc), thr("bare", "Get", pr, enc))
	}, "%.2f")
	row("facade List / bare List (fixed page of 100)", 0, "reference: the framework's limit for a page of 100", func(pr, enc string) float64 {
		return ratio(thr("facade", "List", pr, enc), thr("bare", "List", pr, enc))
	}, "%.2f")
	row("same, by server CPU per call: bare Get ÷ facade Get", 0, "(less noisy on a shared machine)", func(pr, enc string) float64 {
		return ratio(cpu("bare", "Get", pr, enc), cpu("facade", "Get", pr, enc))
	}, "%.2f")
	row("same, by server CPU per call: bare Get ÷ facade List", 0, "", func(pr, enc string) float64 {
		return ratio(cpu("bare", "Get", pr, enc), cpu("facade", "List", pr, enc))
	}, "%.2f")
	row("same, by server CPU per call: bare List ÷ facade List", 0, "", func(pr, enc string) float64 {
		return ratio(cpu("bare", "List", pr, enc), cpu("facade", "List", pr, enc))
	}, "%.2f")
	for _, proc := range []string{"Get", "List"} {
		d, ok := r.Direct[scenario{"direct", proc, "aws-sdk-go-v2", ""}]
		if !ok {
			continue
		}
		row("facade "+proc+" / direct "+proc+" (calls/s)", 1000, "≥ 1000", func(pr, enc string) float64 {
			return ratio(thr("facade", proc, pr, enc), d.Throughput())
		}, "%.0f")
		row("same, with the facade's capacity implied by its CPU per call (nproc ÷ server CPU per call)", 0, "(as if the load generator ran elsewhere)", func(pr, enc string) float64 {
			c := cpu("facade", proc, pr, enc)
			if c == 0 {
				return 0
			}
			return ratio(float64(runtime.NumCPU())*float64(time.Second)/c, d.Throughput())
		}, "%.0f")
	}
	p("")
	if u := r.Upstream; u.reads > 0 && u.calls > 0 {
		var directCalls, directReads int64
		for _, d := range r.Direct {
			directCalls += d.Calls
			directReads += d.OK
		}
		p("Upstream calls per read: the facade made %d EC2 calls while serving %d measured reads (one per %.0f reads); "+
			"direct reads made %d calls for %d successful reads (warm-up included in the calls: %.2f per read). "+
			"Per read served, the facade calls EC2 about %.0f× less.",
			u.calls, u.reads, float64(u.reads)/float64(u.calls), directCalls, directReads, ratio(float64(directCalls), float64(directReads)),
			ratio(float64(directCalls), float64(directReads))*float64(u.reads)/float64(u.calls))
		p("")
	}

	if len(r.Paced) > 0 {
		p("## List at half of saturation (paced; latency from each call's scheduled time)")
		p("")
		p("| scenario | rate asked | achieved | p50 | p90 | p99 | max | errors | server CPU / call | during a refresh | p99 ≤ 2 ms |")
		p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |")
		for _, sc := range slices.SortedFunc(maps.Keys(r.Paced), func(a, b scenario) int {
			return cmp.Or(cmp.Compare(a.Encoding, b.Encoding), cmp.Compare(b.Protocol, a.Protocol))
		}) {
			x := r.Paced[sc]
			p("| %s | %.0f/s | %.0f/s | %s | %s | %s | %s | %d | %s | %s | %s |", sc, x.Rate, x.Throughput(), ms(x.P50), ms(x.P90), ms(x.P99), ms(x.Max), x.Errors,
				fmtMicros(x.ServerCPU), yesNo(x.DuringRefresh), met(x.P99 <= 2*time.Millisecond))
		}
		for _, sc := range slices.SortedFunc(maps.Keys(r.Single), func(a, b scenario) int { return cmp.Compare(a.Encoding, b.Encoding) }) {
			x := r.Single[sc]
			p("| %s, one call at a time | — | %.0f/s | %s | %s | %s | %s | %d | %s | %s | (floor) |", sc, x.Throughput(), ms(x.P50), ms(x.P90), ms(x.P99), ms(x.Max), x.Errors,
				fmtMicros(x.ServerCPU), yesNo(x.DuringRefresh))
		}
		p("")
	}

	if len(r.Direct) > 0 {
		p("## Direct reads: what reached the emulated EC2 (%s a page; throttle 100 burst, 20/s per region)", c.latency)
		p("")
		p("| scenario | successful calls/s | calls received (warm-up included) | throttled | errors by kind |")
		p("| --- | ---: | ---: | ---: | --- |")
		for _, sc := range slices.SortedFunc(maps.Keys(r.Direct), func(a, b scenario) int { return cmp.Compare(a.Proc, b.Proc) }) {
			d := r.Direct[sc]
			var kinds []string
			for _, k := range slices.Sorted(maps.Keys(d.ErrorSamples)) {
				kinds = append(kinds, fmt.Sprintf("%d× %s", d.ErrorSamples[k], k))
			}
			p("| %s | %.1f | %d | %d | %s |", sc, d.Throughput(), d.Calls, d.Throttled, cmp.Or(strings.Join(kinds, "; "), "none"))
		}
		p("")
	}

	if u := r.Upstream; u.duration > 0 {
		expected := int64(u.refreshes) * u.perRefresh
		verdict := "all of them the refresher's"
		if u.calls != expected {
			verdict = fmt.Sprintf("**%d calls are not the published refreshes'**", u.calls-expected)
		}
		p("## Upstream calls during the facade runs")
		p("")
		p("%d DescribeClientVpnEndpoints calls (%d throttled) reached the emulator in the %s of facade load "+
			"(and until a refresh in flight at the end was published); "+
			"%d refreshes were published meanwhile at %d calls each (= %d): %s.",
			u.calls, u.throttled, u.duration.Round(time.Second), u.refreshes, u.perRefresh, expected, verdict)
		p("")
	}

	if len(r.Sizes) > 0 {
		p("## Refresh, memory and warm start (vpnfacade with Redis)")
		p("")
		p("| endpoints | first refresh | its CPU | its upstream calls | RSS at start | RSS serving | peak RSS | live heap after GC | RSS / endpoint | (RSS − start) / endpoint | live heap / endpoint |")
		p("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
		for _, z := range r.Sizes {
			p("| %d | %s | %s | %d | %s | %s | %s | %s | %.2f KiB | %.2f KiB | %.2f KiB |", z.Count, ms(z.Refresh), ms(z.RefreshCPU), z.RefreshCalls,
				mib(z.BaseRSS), mib(z.RSS), mib(z.HWM), mib(z.Heap),
				float64(z.RSS)/1024/float64(z.Count), float64(z.RSS-z.BaseRSS)/1024/float64(z.Count), float64(z.Heap)/1024/float64(z.Count))
		}
		p("")
		p("| endpoints in Redis | warm start: exec → first List | exec → listening | RSS at first List | upstream calls by first List | calls of its first refresh |")
		p("| ---: | ---: | ---: | ---: | ---: | ---: |")
		for _, z := range r.Sizes {
			refresh := "—"
			if z.WarmRefreshed {
				refresh = fmt.Sprint(z.WarmCallsRefresh)
			}
			p("| %d | %s | %s | %s | %d | %s |", z.Count, ms(z.WarmStart), ms(z.WarmListening), mib(z.WarmRSS), z.WarmCallsBefore, refresh)
		}
		p("")
		p("Targets: RSS ≤ 4 KiB per endpoint; warm start ≤ 500 ms. A new process's refresher starts reading EC2 at once, beside the first List.")
		for _, z := range r.Sizes {
			if z.WarmRefreshed {
				who := "all of them its refresher's"
				if z.WarmCallsBefore+z.WarmCallsRefresh != z.PerRefresh {
					who = fmt.Sprintf("**%d beyond its refresher's**", z.WarmCallsBefore+z.WarmCallsRefresh-z.PerRefresh)
				}
				p("- %d endpoints, warm: %d upstream calls by the first List, %d by the end of the first refresh (one refresh is %d): %s.",
					z.Count, z.WarmCallsBefore, z.WarmCallsBefore+z.WarmCallsRefresh, z.PerRefresh, who)
			}
			perEndpoint := float64(z.RSS) / 1024 / float64(z.Count)
			p("- %d endpoints: RSS %.2f KiB/endpoint %s (peak %.2f KiB); warm start %s %s.", z.Count, perEndpoint, met(perEndpoint <= 4),
				float64(z.HWM)/1024/float64(z.Count), ms(z.WarmStart), met(z.WarmStart <= 500*time.Millisecond))
		}
		p("")
	}
	if len(r.Profiles) > 0 {
		p("Profiles of vpnfacade under load (in %s): %s.", c.outDir, strings.Join(r.Profiles, ", "))
	}
	return b.String()
}

// medianCPU returns the median server and client CPU per call over the
// rounds (the lower middle for an even count).
func medianCPU(rounds []measured) (server, client time.Duration) {
	if len(rounds) == 0 {
		return 0, 0
	}
	var sv, cl []time.Duration
	for _, m := range rounds {
		sv, cl = append(sv, m.ServerCPU), append(cl, m.ClientCPU)
	}
	slices.Sort(sv)
	slices.Sort(cl)
	return sv[(len(sv)-1)/2], cl[(len(cl)-1)/2]
}
