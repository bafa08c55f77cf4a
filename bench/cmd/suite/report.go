package main

import (
	"cmp"
	_ "embed"
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/template"
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
	RSS, HWM     int64 // serving, after a GC and 5 s
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

// reportTemplate lays the report out as Markdown; reportView is its data.
//
//go:embed report.md.tmpl
var reportTemplate string

// reportTmpl is reportTemplate parsed once, with the formatting helpers it
// calls; it is never modified.
var reportTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"ms":     ms,
	"mib":    mib,
	"micros": fmtMicros,
	"yesNo":  yesNo,
	"met":    met,
	"join":   strings.Join,
}).Parse(reportTemplate))

// reportView is what the report template shows: the report's figures,
// sorted into table rows, with the ratios and verdicts worked out.
type reportView struct {
	Started                 time.Time
	NumCPU                  int
	CPU                     string
	GoVersion, GOOS, GOARCH string
	LoadBefore, LoadAfter   string
	Took                    time.Duration

	Concurrency, Conns, Rounds              int
	Warmup, Duration, DirectWarmup, Latency time.Duration
	OutDir                                  string
	Encodings                               []string

	Saturated []saturatedRow
	Direct    []directRow // by procedure
	Ratios    []ratioRow
	PerRead   *perRead // nil when nothing was measured
	Paced     []pacedRow
	Single    []pacedRow
	Upstream  *upstreamView // nil when the facade was not loaded
	Sizes     []sizeRow
	Profiles  []string
}

// saturatedRow is one saturated scenario over its rounds.
type saturatedRow struct {
	Scenario             scenario
	Median               measured // the median round by throughput
	Lo, Hi               float64  // the range of throughput over the rounds
	Errors               int64    // over every round
	ServerCPU, ClientCPU time.Duration
	During, Rounds       int // rounds a refresh overlapped, of all
}

// directRow is one direct scenario.
type directRow struct {
	Scenario scenario
	directResult
	ErrorKinds []string // "N× message", by message
}

// ratioRow is one row of the ratio table: a value per protocol and
// encoding, and the target they are held to.
type ratioRow struct {
	Name    string
	Values  []string
	Comment string
	// HasTarget is set when Comment is a target to meet; Met says whether
	// every value met it.
	HasTarget, Met bool
}

// perRead compares the upstream calls per read of the facade and of
// direct reads.
type perRead struct {
	Calls, Reads               int64 // the facade's, during its load
	ReadsPerCall               float64
	DirectCalls, DirectReads   int64
	DirectCallsPerRead, Factor float64
}

// pacedRow is one paced (or one-at-a-time) scenario.
type pacedRow struct {
	Scenario scenario
	measured
	P99Met bool // p99 ≤ 2 ms
}

// upstreamView is what reached upstream during the facade's load.
type upstreamView struct {
	Calls, Throttled     int64
	Duration             time.Duration
	Refreshes            int
	PerRefresh, Expected int64 // calls a refresh makes; those of the refreshes
}

// Unexplained is how many calls the published refreshes do not account
// for.
func (u upstreamView) Unexplained() int64 { return u.Calls - u.Expected }

// sizeRow is one size's refresh, memory and warm start, per endpoint too.
type sizeRow struct {
	sizeResult
	RSSKiB, GrowthKiB, HeapKiB, PeakKiB float64 // per endpoint
	WarmCalls                           int64   // by the end of the first refresh
	RSSMet, WarmStartMet                bool
}

// WarmCallsBeyond is how many calls of a warm start its refresher did not
// make.
func (z sizeRow) WarmCallsBeyond() int64 { return z.WarmCalls - z.PerRefresh }

// String formats the report as Markdown.
func (r *report) String() string {
	var b strings.Builder
	if err := reportTmpl.Execute(&b, r.view()); err != nil {
		// The template is fixed and its data typed: a failure is a bug.
		panic(fmt.Sprintf("report template: %v", err))
	}
	return b.String()
}

// view works out what the report shows.
func (r *report) view() reportView {
	c := r.cfg
	v := reportView{
		Started: r.started, NumCPU: runtime.NumCPU(), CPU: r.cpu,
		GoVersion: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH,
		LoadBefore: r.loadBefore, LoadAfter: cmp.Or(r.loadAfter, "?"),
		Took:        r.ended.Sub(r.started).Round(time.Second),
		Concurrency: c.concurrency, Conns: c.conns, Rounds: c.rounds,
		Warmup: c.warmup, Duration: c.duration, DirectWarmup: max(c.warmup, c.directWarmup), Latency: c.latency,
		OutDir: c.outDir, Encodings: c.encodings, Profiles: r.Profiles,
	}

	keys := slices.SortedFunc(maps.Keys(r.Saturated), func(a, b scenario) int {
		return cmp.Or(cmp.Compare(a.Encoding, b.Encoding), cmp.Compare(a.Proc, b.Proc), cmp.Compare(b.Protocol, a.Protocol), cmp.Compare(a.Target, b.Target))
	})
	for _, sc := range keys {
		rounds := r.Saturated[sc]
		row := saturatedRow{Scenario: sc, Median: median(rounds), Rounds: len(rounds)}
		row.Lo, row.Hi = rounds[0].Throughput(), rounds[0].Throughput()
		for _, x := range rounds {
			row.Lo, row.Hi = min(row.Lo, x.Throughput()), max(row.Hi, x.Throughput())
			row.Errors += x.Errors
			if x.DuringRefresh {
				row.During++
			}
		}
		row.ServerCPU, row.ClientCPU = medianCPU(rounds)
		v.Saturated = append(v.Saturated, row)
	}
	for _, sc := range slices.SortedFunc(maps.Keys(r.Direct), func(a, b scenario) int { return cmp.Compare(a.Proc, b.Proc) }) {
		d := r.Direct[sc]
		row := directRow{Scenario: sc, directResult: d}
		for _, k := range slices.Sorted(maps.Keys(d.ErrorSamples)) {
			row.ErrorKinds = append(row.ErrorKinds, fmt.Sprintf("%d× %s", d.ErrorSamples[k], k))
		}
		v.Direct = append(v.Direct, row)
	}

	v.Ratios = r.ratios()

	if u := r.Upstream; u.reads > 0 && u.calls > 0 {
		p := &perRead{Calls: u.calls, Reads: u.reads, ReadsPerCall: float64(u.reads) / float64(u.calls)}
		for _, d := range r.Direct {
			p.DirectCalls += d.Calls
			p.DirectReads += d.OK
		}
		p.DirectCallsPerRead = ratio(float64(p.DirectCalls), float64(p.DirectReads))
		p.Factor = p.DirectCallsPerRead * float64(u.reads) / float64(u.calls)
		v.PerRead = p
	}

	for _, sc := range slices.SortedFunc(maps.Keys(r.Paced), func(a, b scenario) int {
		return cmp.Or(cmp.Compare(a.Encoding, b.Encoding), cmp.Compare(b.Protocol, a.Protocol))
	}) {
		x := r.Paced[sc]
		v.Paced = append(v.Paced, pacedRow{Scenario: sc, measured: x, P99Met: x.P99 <= 2*time.Millisecond})
	}
	for _, sc := range slices.SortedFunc(maps.Keys(r.Single), func(a, b scenario) int { return cmp.Compare(a.Encoding, b.Encoding) }) {
		v.Single = append(v.Single, pacedRow{Scenario: sc, measured: r.Single[sc]})
	}

	if u := r.Upstream; u.duration > 0 {
		v.Upstream = &upstreamView{
			Calls: u.calls, Throttled: u.throttled, Duration: u.duration.Round(time.Second),
			Refreshes: u.refreshes, PerRefresh: u.perRefresh, Expected: int64(u.refreshes) * u.perRefresh,
		}
	}

	for _, z := range r.Sizes {
		perEndpoint := func(b int64) float64 { return float64(b) / 1024 / float64(z.Count) }
		v.Sizes = append(v.Sizes, sizeRow{
			sizeResult: z,
			RSSKiB:     perEndpoint(z.RSS), GrowthKiB: perEndpoint(z.RSS - z.BaseRSS), HeapKiB: perEndpoint(z.Heap), PeakKiB: perEndpoint(z.HWM),
			WarmCalls:    z.WarmCallsBefore + z.WarmCallsRefresh,
			RSSMet:       perEndpoint(z.RSS) <= 4,
			WarmStartMet: z.WarmStart <= 500*time.Millisecond,
		})
	}
	return v
}

// ratios works out the ratio table: the facade against the framework's
// limit and against direct reads, by throughput and by CPU per call.
func (r *report) ratios() []ratioRow {
	thr := func(target, proc, protocol, enc string) float64 {
		return median(r.Saturated[scenario{target, proc, protocol, enc}]).Throughput()
	}
	// cpu is the median server CPU per call over the rounds.
	cpu := func(target, proc, protocol, enc string) float64 {
		server, _ := medianCPU(r.Saturated[scenario{target, proc, protocol, enc}])
		return float64(server)
	}
	var rows []ratioRow
	// row adds a row; a positive target is the least every value must be.
	row := func(name string, target float64, comment string, value func(protocol, enc string) float64, format string) {
		x := ratioRow{Name: name, Comment: comment, HasTarget: target > 0, Met: true}
		for _, enc := range r.cfg.encodings {
			for _, protocol := range []string{workload.GRPC, workload.ConnectJSON} {
				v := value(protocol, enc)
				x.Values = append(x.Values, fmt.Sprintf(format, v))
				if target > 0 && v < target {
					x.Met = false
				}
			}
		}
		rows = append(rows, x)
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
	return rows
}

// ratio is a / b, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
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
