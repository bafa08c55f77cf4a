package deploy_test

import (
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"

	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
)

// targetLabels are added by Prometheus when it scrapes through the
// ServiceMonitor, so queries may use them on any series.
var targetLabels = []string{"job", "instance", "namespace", "pod", "service", "container", "endpoint"}

// grafanaVars replaces the dashboard's variables with values PromQL parses.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$namespace", "x", "$job", "x")

// alertRules returns the PrometheusRule's spec from the kustomize build.
func alertRules(t *testing.T) *monitoringv1.PrometheusRule {
	t.Helper()
	return named[*monitoringv1.PrometheusRule](t, build(t, "."), "vpnfacade", false)
}

// TestAlertRulesParse checks the rules as Prometheus loads a rule file:
// known fields only, valid PromQL and templates, and the labels and
// annotations an on-call engineer relies on.
func TestAlertRulesParse(t *testing.T) {
	rule := alertRules(t)
	content, err := yaml.Marshal(rule.Spec)
	if err != nil {
		t.Fatal(err)
	}
	groups, errs := rulefmt.Parse(content, false, model.UTF8Validation, parser.NewParser(parser.Options{}), promslog.NewNopLogger())
	for _, err := range errs {
		t.Errorf("rulefmt: %v", err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
	alerts := map[string]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts[r.Alert] = true
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("%s: severity %q, want warning or critical", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: want summary and description annotations", r.Alert)
			}
		}
	}
	for _, want := range []string{"VpnfacadeSnapshotTooOld", "VpnfacadeRefreshesFailing", "VpnfacadeNoLeader", "VpnfacadeThrottled"} {
		if !alerts[want] {
			t.Errorf("no alert %s (have %v)", want, alerts)
		}
	}

	// Negative control: rulefmt does refuse a broken rule.
	broken := strings.Replace(string(content), "vpnfacade_snapshot_age_seconds) > 900", "vpnfacade_snapshot_age_seconds) >", 1)
	if _, errs := rulefmt.Parse([]byte(broken), false, model.UTF8Validation, parser.NewParser(parser.Options{}), promslog.NewNopLogger()); len(errs) == 0 {
		t.Error("rulefmt accepted a rule with broken PromQL")
	}
}

// exported is what the binary's /metrics exposes: label names by series
// name (histograms expand to _bucket, _sum and _count).
type exported map[string]map[string]bool

func scrape(t *testing.T, url string) (exported, map[string]*dto.MetricFamily) {
	t.Helper()
	res, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	out := exported{}
	add := func(name string, extra ...string) {
		if out[name] == nil {
			out[name] = map[string]bool{}
		}
		for _, l := range extra {
			out[name][l] = true
		}
	}
	for name, f := range families {
		var names []string
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				names = append(names, l.GetName())
			}
		}
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM:
			add(name+"_bucket", append(names, "le")...)
			add(name+"_sum", names...)
			add(name+"_count", names...)
		case dto.MetricType_SUMMARY:
			add(name, append(names, "quantile")...)
			add(name+"_sum", names...)
			add(name+"_count", names...)
		default:
			add(name, names...)
		}
	}
	return out, families
}

// callEveryProtocol makes one List call over Connect, gRPC and gRPC-Web and
// one EC2 DescribeClientVpnEndpoints, so that every request series exists.
func callEveryProtocol(t *testing.T, url string) {
	t.Helper()
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Transport: &http.Transport{Protocols: &protocols}}
	for name, c := range map[string]clientvpnv1connect.ClientVpnServiceClient{
		"connect": clientvpnv1connect.NewClientVpnServiceClient(http.DefaultClient, url),
		"grpc":    clientvpnv1connect.NewClientVpnServiceClient(h2c, url, connect.WithGRPC()),
		"grpcweb": clientvpnv1connect.NewClientVpnServiceClient(http.DefaultClient, url, connect.WithGRPCWeb()),
	} {
		if _, err := c.ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 5}); err != nil {
			t.Fatalf("%s List: %v", name, err)
		}
	}
	client := ec2.New(ec2.Options{Region: "eu-west-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")})
	if _, err := client.DescribeClientVpnEndpoints(t.Context(), &ec2.DescribeClientVpnEndpointsInput{MaxResults: aws.Int32(5)}); err != nil {
		t.Fatalf("EC2 DescribeClientVpnEndpoints: %v", err)
	}
}

// query is one PromQL expression and where it comes from.
type query struct{ where, expr string }

// dashboardQueries returns every PromQL expression of the dashboard: panel
// targets (rows included) and the selectors of its variables.
func dashboardQueries(t *testing.T) []query {
	t.Helper()
	b, err := os.ReadFile("monitoring/dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Type       string `json:"type"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	var out []query
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				out = append(out, query{"panel " + p.Title, tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValues.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Errorf("variable %s: cannot read %q", v.Name, v.Definition)
			continue
		}
		// label_values(SELECTOR, LABEL): check it as an aggregation by LABEL.
		out = append(out, query{"variable " + v.Name, "count by (" + m[2] + ") (" + m[1] + ")"})
	}
	return out
}

type panel struct {
	Title   string `json:"title"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

// TestQueriesUseExportedMetrics runs the binary, calls it over every
// protocol, scrapes /metrics and checks that every series name, matcher
// label and grouping label the dashboard and the alert rules use exists.
func TestQueriesUseExportedMetrics(t *testing.T) {
	url := startDemo(t)
	waitServing(t, url)
	callEveryProtocol(t, url)
	metrics, families := scrape(t, url)

	// The protocol label tells the four protocols apart.
	var protocols []string
	for _, m := range families["vpnfacade_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "protocol" {
				protocols = append(protocols, l.GetValue())
			}
		}
	}
	sort.Strings(protocols)
	if want := []string{"connect", "ec2", "grpc", "grpcweb"}; !slices.Equal(slices.Compact(protocols), want) {
		t.Errorf("protocol labels after one call each: %v, want %v", protocols, want)
	}

	queries := dashboardQueries(t)
	if len(queries) < 20 {
		t.Fatalf("only %d dashboard queries found", len(queries))
	}
	for _, g := range alertRules(t).Spec.Groups {
		for _, r := range g.Rules {
			queries = append(queries, query{"alert " + r.Alert, r.Expr.String()})
		}
	}
	p := parser.NewParser(parser.Options{})
	for _, q := range queries {
		expr, err := p.ParseExpr(grafanaVars.Replace(q.expr))
		if err != nil {
			t.Errorf("%s: %q: %v", q.where, q.expr, err)
			continue
		}
		for _, problem := range checkExpr(expr, metrics) {
			t.Errorf("%s: %s", q.where, problem)
		}
	}
}

// checkExpr lists the series names and labels expr uses that the binary
// does not export.
func checkExpr(expr parser.Expr, metrics exported) []string {
	var problems []string
	labelsUnder := func(n parser.Node) map[string]bool {
		out := map[string]bool{}
		for _, l := range targetLabels {
			out[l] = true
		}
		parser.Inspect(n, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok {
				for l := range metrics[vs.Name] {
					out[l] = true
				}
			}
			return nil
		})
		return out
	}
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			have, ok := metrics[n.Name]
			if !ok {
				problems = append(problems, "series "+n.Name+" is not exported")
				return nil
			}
			for _, m := range n.LabelMatchers {
				if m.Name != model.MetricNameLabel && !have[m.Name] && !slices.Contains(targetLabels, m.Name) {
					problems = append(problems, n.Name+" has no label "+m.Name)
				}
			}
		case *parser.AggregateExpr:
			have := labelsUnder(n.Expr)
			for _, l := range n.Grouping {
				if !have[l] {
					problems = append(problems, "grouping by "+l+", which "+n.Expr.String()+" does not have")
				}
			}
		}
		return nil
	})
	return problems
}

// TestCheckExprFindsMistakes makes sure the comparison above can fail.
func TestCheckExprFindsMistakes(t *testing.T) {
	metrics := exported{"vpnfacade_requests_total": {"protocol": true, "procedure": true, "code": true}}
	p := parser.NewParser(parser.Options{})
	for expr, want := range map[string]string{
		`sum by (api) (rate(vpnfacade_requests_total[5m]))`:      "grouping by api",
		`rate(vpnfacade_requests_total{api="connect"}[5m])`:      "no label api",
		`rate(vpnfacade_request_total[5m])`:                      "vpnfacade_request_total is not exported",
		`sum by (protocol) (rate(vpnfacade_requests_total[5m]))`: "",
	} {
		e, err := p.ParseExpr(expr)
		if err != nil {
			t.Fatal(err)
		}
		problems := strings.Join(checkExpr(e, metrics), "; ")
		if want == "" && problems != "" || !strings.Contains(problems, want) {
			t.Errorf("%s: problems %q, want %q", expr, problems, want)
		}
	}
}
