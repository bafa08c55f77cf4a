package main_test

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/vpnfacade/vpnfacade/ec2sim"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	adminv1 "github.com/vpnfacade/vpnfacade/gen/vpnfacade/admin/v1"
	"github.com/vpnfacade/vpnfacade/internal/prereq"
)

// TestBrowserPage drives the page in headless Chromium against the real
// binary, as an operator would: it waits for data, filters, shares links,
// pages, sorts and reads errors, and checks what the page shows against the
// API's own answers.
func TestBrowserPage(t *testing.T) {
	t.Parallel()
	s := startSim(t, 400, ec2sim.Options{})
	f := startFacade(t, s, "")
	waitServing(t, f.url)
	api := clients(f.url)["connect"]
	b := newBrowser(t)

	t.Run("table", func(t *testing.T) {
		tab := b.tab(t)
		b.open(t, tab, f.url+"/")
		want := apiPage(t, api, nil, 100, "")
		if got := rowKeys(t, tab); !slices.Equal(got, want.keys) {
			t.Errorf("the page shows %d rows, want the API's first page of %d in its order:\n got %v\nwant %v", len(got), len(want.keys), head(got), head(want.keys))
		}
		if text := visibleText(t, tab, "body"); strings.Contains(text, "Loading") || strings.Contains(text, "Reading the snapshot") {
			t.Errorf("the page still says it is loading once the rows are shown:\n%s", text)
		}
		headers := evalStrings(t, tab, `[...document.querySelectorAll('#endpoints thead th')].map(th => th.textContent.trim())`)
		wantHeaders := []string{"Name", "Endpoint ID", "State", "Region", "Account", "VPC", "Transport", "Authentication", "Split tunnel", "Client CIDR", "Created"}
		if !slices.Equal(headers, wantHeaders) {
			t.Errorf("columns = %q, want %q", headers, wantHeaders)
		}
		count := waitText(t, tab, "#count", regexp.MustCompile(`^400 matches · page 1, rows 1–100$`))
		t.Logf("count line: %s", count)

		// The freshness line names the API's snapshot and ticks by itself.
		first := waitText(t, tab, "#freshness", regexp.MustCompile(fmt.Sprintf(`^Snapshot %d · refreshed \d+ s ago$`, want.snapshot.GetVersion())))
		waitText(t, tab, "#freshness", regexp.MustCompile(`^Snapshot \d+ · refreshed \d+ s ago$`), func(s string) bool { return s != first })
		if visible(t, tab, "#stale") {
			t.Errorf("a fresh snapshot shows the stale warning")
		}

		// A row reads as the API's endpoint does, state included without colour.
		e := s.byKey(want.keys[0])
		cells := evalStrings(t, tab, `[...document.querySelectorAll('#endpoints tbody tr:first-child td')].map(td => td.textContent)`)
		wantCells := []string{tagValue(e, "Name"), e.GetClientVpnEndpointId(), "", e.GetRegion(), e.GetAccountId(), e.GetVpcId(), "", "", "", e.GetClientCidrBlock(), ""}
		for i, w := range wantCells {
			if w != "" && (i >= len(cells) || cells[i] != w) {
				t.Errorf("first row, column %s = %q, want %q", wantHeaders[i], at(cells, i), w)
			}
		}
		if st := at(cells, 2); !strings.HasSuffix(st, statusSpelling(e)) || !strings.ContainsAny(st, "●◐✕?") {
			t.Errorf("first row's state = %q, want a symbol and %q", st, statusSpelling(e))
		}
		b.screenshot(t, tab, "table")

		// Sorting by a column orders the loaded rows by it, and the address keeps it.
		click(t, tab, `#endpoints th button[data-column="created"]`)
		created := evalStrings(t, tab, `[...document.querySelectorAll('#endpoints tbody td[data-column="created"] time')].map(e => e.getAttribute('datetime'))`)
		if len(created) != 100 || !slices.IsSorted(created) {
			t.Errorf("after sorting by Created, the 100 rows' creation times are not ascending: %v", head(created))
		}
		if got := rowKeys(t, tab); !sameSet(got, want.keys) {
			t.Errorf("sorting changed which rows are shown")
		}
		click(t, tab, `#endpoints th button[data-column="created"]`)
		created = evalStrings(t, tab, `[...document.querySelectorAll('#endpoints tbody td[data-column="created"] time')].map(e => e.getAttribute('datetime'))`)
		if !slices.IsSortedFunc(created, func(a, b string) int { return strings.Compare(b, a) }) {
			t.Errorf("a second click on Created does not sort descending: %v", head(created))
		}
		if q := query(t, tab); q.Get("sort") != "-created" {
			t.Errorf("the address does not keep the sort: %v", q)
		}

		// The column choice lives in the address.
		b.open(t, tab, f.url+"/?cols=id,status,dns")
		headers = evalStrings(t, tab, `[...document.querySelectorAll('#endpoints thead th')].map(th => th.textContent.trim())`)
		if !slices.Equal(headers, []string{"Endpoint ID", "State", "DNS name"}) {
			t.Errorf("with cols=id,status,dns the columns are %q", headers)
		}
		click(t, tab, "details.menu summary")
		click(t, tab, "#col-region")
		if q := query(t, tab); q.Get("cols") != "id,status,region,dns" {
			t.Errorf("ticking Region makes cols=%q, want id,status,region,dns", q.Get("cols"))
		}
	})

	t.Run("filters", func(t *testing.T) {
		tab := b.tab(t)
		b.open(t, tab, f.url+"/")
		// "/" focuses the filter box; the filters are typed as an operator would.
		run(t, tab, chromedp.KeyEvent("/"))
		if focused := eval[string](t, tab, `document.activeElement.id`); focused != "filter" {
			t.Fatalf("after '/', the focus is on %q, want the filter box", focused)
		}
		suggestions := evalStrings(t, tab, `[...document.querySelectorAll('#filter-suggestions option')].map(o => o.value)`)
		for _, want := range []string{"transport-protocol=", "region=", "tag:Environment=", "tag-key="} {
			if !slices.Contains(suggestions, want) {
				t.Errorf("the filter box does not suggest %q: %v", want, suggestions)
			}
		}
		typeIn(t, tab, "#filter", "region=")
		suggestions = evalStrings(t, tab, `[...document.querySelectorAll('#filter-suggestions option')].map(o => o.value)`)
		if !slices.Equal(suggestions, []string{"region=eu-west-1", "region=us-east-1"}) {
			t.Errorf("after region=, the suggestions are %v, want the two regions of the data", suggestions)
		}
		// Tag values are suggested from the loaded endpoints.
		eval[string](t, tab, `document.getElementById('filter').value = ''`)
		typeIn(t, tab, "#filter", "tag:Environment=")
		suggestions = evalStrings(t, tab, `[...document.querySelectorAll('#filter-suggestions option')].map(o => o.value)`)
		for _, k := range apiPage(t, api, nil, 100, "").keys {
			if v := tagValue(s.byKey(k), "Environment"); v != "" && !slices.Contains(suggestions, "tag:Environment="+v) {
				t.Errorf("after tag:Environment=, the suggestions %v lack %q, a value of the rows shown", suggestions, v)
			}
		}
		eval[string](t, tab, `document.getElementById('filter').value = ''`)
		b.submitFilter(t, tab, "transport-protocol=udp")
		b.submitFilter(t, tab, "tag:Environment=prod*,staging")

		filters := []*clientvpnv1.Filter{
			{Name: "transport-protocol", Values: []string{"udp"}},
			{Name: "tag:Environment", Values: []string{"prod*", "staging"}},
		}
		want := apiPage(t, api, filters, 100, "")
		all, err := listAll(t.Context(), api, &clientvpnv1.ListClientVpnEndpointsRequest{Filters: filters, MaxResults: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) == 0 || len(all) == len(s.data) {
			t.Fatalf("the two filters match %d of %d endpoints: the test needs a real subset", len(all), len(s.data))
		}
		got := rowKeys(t, tab)
		if !slices.Equal(got, want.keys) {
			t.Errorf("with two filters the page shows %d rows, the API answers %d:\n got %v\nwant %v", len(got), len(want.keys), head(got), head(want.keys))
		}
		waitText(t, tab, "#count", regexp.MustCompile(fmt.Sprintf(`^%d match(es)? · `, len(all))))
		chips := evalStrings(t, tab, `[...document.querySelectorAll('#chips .chip')].map(c => c.dataset.filter)`)
		if !slices.Equal(chips, []string{"transport-protocol=udp", "tag:Environment=prod*,staging"}) {
			t.Errorf("chips = %q", chips)
		}
		q := query(t, tab)
		if !slices.Equal(q["filter"], chips) {
			t.Errorf("the address carries filters %q, want the chips %q", q["filter"], chips)
		}

		// The address, opened in a new tab, gives the same view.
		link := eval[string](t, tab, `location.href`)
		other := b.tab(t)
		b.open(t, other, link)
		if got := rowKeys(t, other); !slices.Equal(got, want.keys) {
			t.Errorf("the shared link shows %d rows, want the same %d", len(got), len(want.keys))
		}
		if got := evalStrings(t, other, `[...document.querySelectorAll('#chips .chip')].map(c => c.dataset.filter)`); !slices.Equal(got, chips) {
			t.Errorf("the shared link shows chips %q, want %q", got, chips)
		}

		// Removing a chip widens the result to the other filter alone.
		b.clickAndWait(t, tab, `#chips .chip[data-filter="tag:Environment=prod*,staging"] .chip-remove`)
		udp := apiPage(t, api, filters[:1], 100, "")
		if got := rowKeys(t, tab); !slices.Equal(got, udp.keys) {
			t.Errorf("after removing a chip the page shows %d rows, want the %d of transport-protocol=udp", len(got), len(udp.keys))
		}

		// Links of the first version of the page keep working.
		b.open(t, other, f.url+"/?filter="+url.QueryEscape("transport-protocol=udp"))
		if got := rowKeys(t, other); !slices.Equal(got, udp.keys) {
			t.Errorf("/?filter=transport-protocol%%3Dudp shows %d rows, want the API's %d", len(got), len(udp.keys))
		}
	})

	t.Run("paging", func(t *testing.T) {
		tab := b.tab(t)
		b.open(t, tab, f.url+"/")
		// Choose 25 rows a page in the page size menu.
		before := loads(t, tab)
		run(t, tab, chromedp.SetValue(chromedp.CSS("#size"), "25"))
		eval[bool](t, tab, `document.getElementById('size').dispatchEvent(new Event('change', {bubbles: true}))`)
		b.waitLoadedAfter(t, tab, before)
		p1 := apiPage(t, api, nil, 25, "")
		p2 := apiPage(t, api, nil, 25, p1.next)
		p3 := apiPage(t, api, nil, 25, p2.next)
		expect := func(step string, want apiAnswer, rows string) {
			t.Helper()
			if got := rowKeys(t, tab); !slices.Equal(got, want.keys) {
				t.Errorf("%s: the page shows %v…, want the API's page %v…", step, head(got), head(want.keys))
			}
			waitText(t, tab, "#count", regexp.MustCompile(`· `+regexp.QuoteMeta(rows)+`$`))
		}
		expect("first page", p1, "page 1, rows 1–25")
		if enabled(t, tab, "#prev") {
			t.Errorf("Previous is enabled on the first page")
		}
		b.clickAndWait(t, tab, "#next")
		expect("after Next", p2, "page 2, rows 26–50")
		b.clickAndWait(t, tab, "#next")
		expect("after Next twice", p3, "page 3, rows 51–75")
		link := eval[string](t, tab, `location.href`)
		b.clickAndWait(t, tab, "#prev")
		expect("after Previous", p2, "page 2, rows 26–50")
		// The browser's Back button returns to the page before.
		before = loads(t, tab)
		eval[bool](t, tab, `(history.back(), true)`)
		b.waitLoadedAfter(t, tab, before)
		expect("after Back", p3, "page 3, rows 51–75")

		other := b.tab(t)
		b.open(t, other, link)
		if got := rowKeys(t, other); !slices.Equal(got, p3.keys) {
			t.Errorf("the link to page 3 shows %v…, want %v…", head(got), head(p3.keys))
		}

		// Load all shows every match at once.
		b.clickAndWait(t, tab, "#all")
		all, err := listAll(t.Context(), api, &clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if got := rowKeys(t, tab); !slices.Equal(got, keysOf(all)) {
			t.Errorf("Load all shows %d rows, the API lists %d", len(got), len(all))
		}
		waitText(t, tab, "#count", regexp.MustCompile(`^400 matches · all 400 loaded$`))
		if enabled(t, tab, "#next") || enabled(t, tab, "#prev") {
			t.Errorf("Next or Previous stays enabled with every row loaded")
		}
	})

	t.Run("keyboard", func(t *testing.T) {
		tab := b.tab(t)
		b.open(t, tab, f.url+"/")
		want := apiPage(t, api, nil, 100, "")
		run(t, tab, chromedp.KeyEvent(kb.ArrowDown), chromedp.KeyEvent(kb.ArrowDown), chromedp.KeyEvent(kb.ArrowDown), chromedp.KeyEvent(kb.ArrowUp))
		if k := eval[string](t, tab, `document.activeElement.dataset.key || ''`); k != want.keys[1] {
			t.Fatalf("after ↓↓↓↑ the cursor is on %q, want the second row %q", k, want.keys[1])
		}
		run(t, tab, chromedp.KeyEvent(kb.Enter))
		run(t, tab, chromedp.WaitVisible(chromedp.CSS(`#details [data-field="clientVpnEndpointId"]`)))
		if key := eval[string](t, tab, `document.querySelector('#details .details-body').dataset.key`); key != want.keys[1] {
			t.Errorf("Enter opened %q, want %q", key, want.keys[1])
		}
		if q := query(t, tab); q.Get("endpoint") != want.keys[1] {
			t.Errorf("the address names endpoint %q, want %q", q.Get("endpoint"), want.keys[1])
		}
		run(t, tab, chromedp.KeyEvent(kb.Escape))
		run(t, tab, chromedp.WaitNotVisible(chromedp.CSS(`#details`)))
		if q := query(t, tab); q.Has("endpoint") {
			t.Errorf("Escape closed the details but the address still names %q", q.Get("endpoint"))
		}
	})

	t.Run("errors", func(t *testing.T) {
		tab := b.tab(t)
		b.open(t, tab, f.url+"/")
		b.submitFilter(t, tab, "transport=udp")
		_, apiErr := api.ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{
			Filters: []*clientvpnv1.Filter{{Name: "transport", Values: []string{"udp"}}},
		})
		if connect.CodeOf(apiErr) != connect.CodeInvalidArgument {
			t.Fatalf("the API answers an unknown filter with %v, want InvalidArgument", apiErr)
		}
		var ce *connect.Error
		if !asConnectError(apiErr, &ce) {
			t.Fatal(apiErr)
		}
		if state := eval[string](t, tab, `document.body.dataset.state`); state != "error" {
			t.Errorf("page state = %q, want error", state)
		}
		if got, want := visibleText(t, tab, "#error"), "InvalidArgument: "+ce.Message(); got != want {
			t.Errorf("the error reads %q, want %q", got, want)
		}
		if fresh := visibleText(t, tab, "#freshness"); !strings.HasPrefix(fresh, "Snapshot ") {
			t.Errorf("with an error the freshness line says %q, want the snapshot", fresh)
		}
		b.screenshot(t, tab, "error")

		// Text that is not name=value is refused before it reaches the API.
		before := loads(t, tab)
		typeIn(t, tab, "#filter", "vpc-id"+kb.Enter)
		if got := visibleText(t, tab, "#error"); !strings.Contains(got, `"vpc-id" is not name=value`) {
			t.Errorf("a filter without = reads %q", got)
		}
		if loads(t, tab) != before {
			t.Errorf("a filter without = was sent to the API")
		}

		// No match: an empty state that names the filters, not an empty table.
		b.open(t, tab, f.url+"/?filter="+url.QueryEscape("endpoint-id=cvpn-endpoint-none*")+"&filter="+url.QueryEscape("region=eu-west-1"))
		none := apiPage(t, api, []*clientvpnv1.Filter{{Name: "endpoint-id", Values: []string{"cvpn-endpoint-none*"}}, {Name: "region", Values: []string{"eu-west-1"}}}, 100, "")
		if len(none.keys) != 0 {
			t.Fatalf("the API matches %d endpoints for the no-match filters", len(none.keys))
		}
		if !visible(t, tab, "#empty") || visible(t, tab, "#endpoints") || visible(t, tab, "#error") {
			t.Errorf("no match: empty state visible %v, table visible %v, error visible %v; want only the empty state",
				visible(t, tab, "#empty"), visible(t, tab, "#endpoints"), visible(t, tab, "#error"))
		}
		if got, want := lines(visibleText(t, tab, "#empty")), []string{"No endpoint matches these filters:", "endpoint-id=cvpn-endpoint-none*", "region=eu-west-1", "Clear filters"}; !slices.Equal(got, want) {
			t.Errorf("the empty state reads %q, want %q", got, want)
		}
		b.screenshot(t, tab, "empty")
		b.clickAndWait(t, tab, "#clear-filters")
		if got := rowKeys(t, tab); len(got) != 100 {
			t.Errorf("Clear filters shows %d rows, want a full first page", len(got))
		}
	})

	t.Run("narrow", func(t *testing.T) {
		tab := b.tab(t)
		run(t, tab, chromedp.EmulateViewport(390, 844))
		want := apiPage(t, api, nil, 100, "")
		b.open(t, tab, f.url+"/?endpoint="+url.QueryEscape(want.keys[3]))
		run(t, tab, chromedp.WaitVisible(chromedp.CSS(`#details [data-field="clientVpnEndpointId"]`)))
		// Nothing but the table scrolls sideways on a phone-sized window.
		if w := eval[float64](t, tab, `document.documentElement.scrollWidth`); w > 390 {
			t.Errorf("the page is %v px wide in a 390 px window", w)
		}
		b.screenshot(t, tab, "narrow-details")
	})

	// The status panel shows GetStatus: the emulator's partitions with
	// their endpoints, this replica's role; "Refresh now" forces a refresh
	// and a second click within the interval is refused with its reason.
	t.Run("status panel", func(t *testing.T) {
		tab := b.tab(t)
		b.open(t, tab, f.url+"/")
		st, err := adminClients(f.url)["connect"].GetStatus(t.Context(), &adminv1.GetStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		waitText(t, tab, "#status-summary", regexp.MustCompile(`^Status: 2 partitions · leader `+regexp.QuoteMeta(st.GetReplica())+
			` · this replica `+regexp.QuoteMeta(st.GetReplica())+` is solo \(in-memory store\)$`))
		click(t, tab, "#status-summary")
		var want []string
		for _, p := range st.GetPartitions() {
			want = append(want, fmt.Sprintf("%s/%s %d never-failed", p.GetAccountId(), p.GetRegion(), p.GetEndpoints()))
		}
		got := evalStrings(t, tab, `[...document.querySelectorAll('#status-partitions tbody tr')].map(tr =>
			tr.dataset.partition + " " + tr.children[2].textContent + (tr.children[4].textContent === "" && tr.children[5].textContent === "0" ? " never-failed" : " failed"))`)
		if len(want) != len(e2eRegions) || !slices.Equal(got, want) {
			t.Errorf("status panel partitions = %q, want the API's %q", got, want)
		}
		if text := visibleText(t, tab, "#status-partitions tbody"); !strings.Contains(text, "s ago") {
			t.Errorf("the partitions' last success is not shown as an age: %q", text)
		}
		click(t, tab, "#refresh-now")
		waitText(t, tab, "#refresh-result", regexp.MustCompile(`^Refreshed by `+regexp.QuoteMeta(st.GetReplica())+`: snapshot \d+ \((new|unchanged)\)$`))
		click(t, tab, "#refresh-now")
		waitText(t, tab, "#refresh-result", regexp.MustCompile(`^ResourceExhausted: a refresh was forced less than 10s ago: retry in `))
		b.screenshot(t, tab, "status-panel")
	})
}

// TestBrowserDetails opens the detail view of an endpoint with every optional
// field of the contract set and checks every value it shows, its JSON and its
// two commands against the API.
func TestBrowserDetails(t *testing.T) {
	t.Parallel()
	data, err := ec2sim.Generate(ec2sim.GenerateOptions{Count: 60, Seed: 42, Regions: e2eRegions, Accounts: []string{e2eAccount}})
	if err != nil {
		t.Fatal(err)
	}
	full := everyFieldSet(data[16])
	if unset := unsetFields(full); len(unset) > 0 {
		t.Fatalf("the fixture leaves fields of the contract unset: %v", unset)
	}
	data[16] = full
	// The programs the page's commands run, found (and buf built) before
	// the browser's clock starts.
	bufEnv := bufOnPath(t)
	prereq.Command(t, "aws", "awscli", "the page's AWS CLI command is run as copied")
	s := startSimWith(t, data)
	f := startFacade(t, s.sim, "")
	waitServing(t, f.url)
	api := clients(f.url)["connect"]
	b := newBrowser(t)

	res, err := api.GetClientVpnEndpoint(t.Context(), &clientvpnv1.GetClientVpnEndpointRequest{
		ClientVpnEndpointId: full.GetClientVpnEndpointId(), Region: full.GetRegion(), AccountId: full.GetAccountId(),
	})
	if err != nil {
		t.Fatal(err)
	}
	fromAPI := res.GetClientVpnEndpoint()
	key := fromAPI.GetAccountId() + "/" + fromAPI.GetRegion() + "/" + fromAPI.GetClientVpnEndpointId()

	tab := b.tab(t)
	b.open(t, tab, f.url+"/?filter="+url.QueryEscape("endpoint-id="+fromAPI.GetClientVpnEndpointId()))
	click(t, tab, `#endpoints tbody tr[data-key="`+key+`"]`)
	run(t, tab, chromedp.WaitVisible(chromedp.CSS(`#details [data-field="clientVpnEndpointId"]`)))
	if q := query(t, tab); q.Get("endpoint") != key {
		t.Errorf("the address names endpoint %q, want %q", q.Get("endpoint"), key)
	}
	checkDetails(t, tab, fromAPI)
	b.screenshot(t, tab, "details")

	// The link opens the same details in a new tab, read by Get.
	link := eval[string](t, tab, `location.origin + '/?endpoint=' + encodeURIComponent(new URLSearchParams(location.search).get('endpoint'))`)
	other := b.tab(t)
	b.open(t, other, link)
	run(t, other, chromedp.WaitVisible(chromedp.CSS(`#details [data-field="clientVpnEndpointId"]`)))
	checkDetails(t, other, fromAPI)

	// The commands fetch the same endpoint: buf curl through the Connect
	// API, the AWS CLI through the EC2-compatible one.
	bufCmd := visibleText(t, tab, "#cmd-buf")
	out := runShell(t, bufCmd, bufEnv)
	got := new(clientvpnv1.GetClientVpnEndpointResponse)
	if err := protojson.Unmarshal([]byte(out), got); err != nil {
		t.Fatalf("%s printed %v:\n%s", bufCmd, err, out)
	}
	if !proto.Equal(got.GetClientVpnEndpoint(), fromAPI) {
		t.Errorf("the page's buf curl command fetches a different endpoint:\n%s", out)
	}
	awsCmd := visibleText(t, tab, "#cmd-aws")
	out = runShell(t, awsCmd, []string{
		"AWS_ACCESS_KEY_ID=browser-test", "AWS_SECRET_ACCESS_KEY=browser-test",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PAGER=",
	})
	checkAWSOutput(t, out, fromAPI)
}

// TestBrowserStale shows the stale warning once the service can no longer
// refresh: the service refreshes every 200 ms from an emulator that is then
// stopped, and keeps its last data, marked stale.
func TestBrowserStale(t *testing.T) {
	t.Parallel()
	data, err := ec2sim.Generate(ec2sim.GenerateOptions{Count: 50, Seed: 7, Regions: e2eRegions, Accounts: []string{e2eAccount}})
	if err != nil {
		t.Fatal(err)
	}
	s := startSimWith(t, data)
	f := startFacade(t, s.sim, "", "--refresh-interval", "200ms")
	waitServing(t, f.url)
	api := clients(f.url)["connect"]
	b := newBrowser(t)

	tab := b.tab(t)
	b.open(t, tab, f.url+"/")
	if visible(t, tab, "#stale") {
		t.Fatalf("the stale warning shows while the emulator answers")
	}
	s.stop()
	// Wait, by the API, until the service says its snapshot is stale.
	deadline := time.Now().Add(45 * time.Second)
	for {
		res, err := api.ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 1})
		if err == nil && res.GetSnapshot().GetStale() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the service never reported a stale snapshot (last answer %v, %v)", res, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.open(t, tab, f.url+"/")
	if !visible(t, tab, "#stale") {
		t.Fatalf("the page does not show the stale warning")
	}
	if text := visibleText(t, tab, "#stale"); !strings.HasPrefix(text, "⚠ Stale data. ") {
		t.Errorf("the stale warning reads %q", text)
	}
	// The data is still shown: stale is a warning, not an error.
	if n := len(rowKeys(t, tab)); n != 50 {
		t.Errorf("with a stale snapshot the page shows %d rows, want the 50 kept", n)
	}
	b.screenshot(t, tab, "stale")
}
