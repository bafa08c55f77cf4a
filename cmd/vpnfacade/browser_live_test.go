package main_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/vpnfacade/vpnfacade/ec2sim"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/internal/redistest"
)

// TestBrowserLive watches the page update itself while the emulator
// changes (issue 13): with a filter set, an endpoint added at the emulator
// appears, one deleted disappears, one changed shows its new value
// highlighted, an addition outside the filter stays out, and the count and
// freshness line follow — all without a reload. Then the service restarts
// (SIGTERM, a new process on the same address sharing Redis) while the
// emulator deletes another endpoint: the page says it is reconnecting,
// resumes from the version it had and shows the deletion, again without a
// reload (a reset would have reloaded the view). A second tab, refused a
// stream (one per address), falls back to polling and shows the next
// change by reading the view again, as does a tab behind a proxy that
// lets plain calls through but not streams. Last, a service that cannot resume the
// page's version (another data set) resets the stream, and the page reads
// its view again in place.
func TestBrowserLive(t *testing.T) {
	t.Parallel()
	s := startSim(t, 200, ec2sim.Options{})
	rds := redistest.Start(t)
	addr := freeAddr(t)
	// One stream per address: a second tab is refused one and polls instead.
	args := []string{"--listen", addr, "--refresh-interval", "1s", "--lease-ttl", "2s", "--shutdown-grace", "2s", "--max-watchers-per-address", "1", "--watch-heartbeat", "500ms"}
	f := startFacade(t, s, rds.URL(), args...)
	waitServing(t, f.url)
	api := clients(f.url)["connect"]
	b := newBrowser(t)
	tab := b.tab(t)

	region := e2eRegions[0]
	inRegion := []*clientvpnv1.Filter{{Name: "region", Values: []string{region}}}
	b.open(t, tab, f.url+"/?filter=region%3D"+region)
	shown := rowKeys(t, tab)
	if want := apiPage(t, api, inRegion, 100, ""); !slices.Equal(shown, want.keys) {
		t.Fatalf("the page shows %d rows, want the API's %d", len(shown), len(want.keys))
	}
	waitAttr(t, tab, "live", "live")
	if text := visibleText(t, tab, "#live"); text != "● Live" {
		t.Errorf("the connection indicator reads %q, want ● Live", text)
	}
	// A reload would lose this mark and count one more load.
	eval[string](t, tab, `window.liveMark = "kept"`)
	loadsBefore := loads(t, tab)

	// Nothing changes at the emulator: each refresh confirms the snapshot
	// without a new version, and the heartbeats bring its refresh time to
	// the freshness line.
	version := regexp.MustCompile(`^Snapshot \d+ · `).FindString(visibleText(t, tab, "#freshness"))
	if version == "" {
		t.Fatalf("the freshness line reads %q; want Snapshot N · …", visibleText(t, tab, "#freshness"))
	}
	refreshedAt := func() string {
		return eval[string](t, tab, `document.querySelector("#freshness time")?.getAttribute("datetime") ?? ""`)
	}
	first := refreshedAt()
	waitUntil(t, 30*time.Second, "the freshness line to show a later refresh of the same snapshot", func() bool {
		return refreshedAt() > first
	})
	if text := visibleText(t, tab, "#freshness"); !strings.HasPrefix(text, version) {
		t.Fatalf("the freshness line reads %q; want the same snapshot, %q", text, version)
	}
	noReload(t, tab, loadsBefore)

	shownEndpoint := func(key string) *clientvpnv1.ClientVpnEndpoint {
		for _, e := range s.Endpoints(e2eAccount, region) {
			if keyOf(e) == key {
				return e
			}
		}
		t.Fatalf("%s is not in the emulator", key)
		return nil
	}
	// The endpoint about to change is open in the details panel.
	click(t, tab, `#endpoints tbody tr[data-key="`+shown[2]+`"] td[data-column="id"]`)
	waitText(t, tab, "#details h2", regexp.MustCompile(`\S`))
	deleted := shownEndpoint(shown[5])
	changed := proto.CloneOf(shownEndpoint(shown[2]))
	changed.Tags = []*clientvpnv1.Tag{{Key: proto.String("Name"), Value: proto.String("renamed-live")}}
	added := proto.CloneOf(changed)
	added.ClientVpnEndpointId = proto.String("cvpn-endpoint-00000000000000000") // first in the API's order: page 1
	added.Tags = []*clientvpnv1.Tag{{Key: proto.String("Name"), Value: proto.String("added-live")}}
	outside := proto.CloneOf(added)
	outside.Region = e2eRegions[1]
	outside.ClientVpnEndpointId = proto.String("cvpn-endpoint-00000000000000001")
	if err := s.Put(added, outside, changed); err != nil {
		t.Fatal(err)
	}
	if n := s.Delete(e2eAccount, region, deleted.GetClientVpnEndpointId()); n != 1 {
		t.Fatalf("the emulator deleted %d endpoints, want 1", n)
	}

	waitRows(t, tab, "the change to arrive", func(keys []string) bool {
		return slices.Contains(keys, keyOf(added)) && !slices.Contains(keys, keyOf(deleted))
	})
	keys := rowKeys(t, tab)
	if keys[0] != keyOf(added) {
		t.Errorf("the added endpoint is row %d, want the first (the API's order)", slices.Index(keys, keyOf(added))+1)
	}
	if slices.Contains(keys, keyOf(outside)) {
		t.Errorf("an endpoint added in %s appears, though the filter is region=%s", e2eRegions[1], region)
	}
	want := apiPage(t, api, inRegion, 101, "")
	if !slices.Equal(keys, want.keys[:len(keys)]) {
		t.Errorf("after the change the rows are not the API's, in its order:\n got %v\nwant %v", head(keys), head(want.keys))
	}
	waitText(t, tab, `#endpoints tbody tr[data-key="`+keyOf(changed)+`"] td[data-column="name"]`, regexp.MustCompile(`^renamed-live$`))
	// The open details follow the change too.
	waitText(t, tab, "#details h2", regexp.MustCompile(`renamed-live`))
	if !eval[bool](t, tab, `!!document.querySelector('#endpoints tbody tr[data-key="`+keyOf(changed)+`"] td[data-column="name"].live-changed')`) {
		t.Errorf("the changed Name cell is not highlighted")
	}
	if !eval[bool](t, tab, `document.querySelector('#endpoints tbody tr[data-key="`+keyOf(added)+`"]').classList.contains('live-added')`) {
		t.Errorf("the added row is not highlighted")
	}
	all, err := listAll(t.Context(), api, &clientvpnv1.ListClientVpnEndpointsRequest{Filters: inRegion})
	if err != nil {
		t.Fatal(err)
	}
	waitText(t, tab, "#count", regexp.MustCompile(fmt.Sprintf(`^%d matches · `, len(all))))
	waitText(t, tab, "#freshness", regexp.MustCompile(fmt.Sprintf(`^Snapshot %d · `, want.snapshot.GetVersion())))
	b.screenshot(t, tab, "live")
	noReload(t, tab, loadsBefore)

	// The service restarts; the emulator changes meanwhile.
	if err := f.Stop(30 * time.Second); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	waitAttr(t, tab, "live", "reconnecting")
	gone := shownEndpoint(rowKeys(t, tab)[3])
	s.Delete(e2eAccount, region, gone.GetClientVpnEndpointId())
	f = startFacade(t, s, rds.URL(), args...)
	waitRows(t, tab, "the change made while the service was down", func(keys []string) bool {
		return !slices.Contains(keys, keyOf(gone))
	})
	waitAttr(t, tab, "live", "live")
	noReload(t, tab, loadsBefore)
	if keys := rowKeys(t, tab); !slices.Contains(keys, keyOf(added)) || slices.Contains(keys, keyOf(deleted)) {
		t.Errorf("after resuming, the earlier changes are undone: %v", head(keys))
	}

	// Where the service refuses a stream, the page polls: it reloads the
	// view when the snapshot moves.
	polling := b.tab(t)
	b.open(t, polling, f.url+"/?filter=region%3D"+region)
	waitAttr(t, polling, "live", "polling")
	pollingLoads := loads(t, polling)
	// So does a page behind a proxy that answers streams with 502 Bad
	// Gateway while plain calls get through: after a few tries, it polls.
	proxied := b.tab(t)
	b.open(t, proxied, noStreamsProxy(t, f.url)+"/?filter=region%3D"+region)
	waitAttr(t, proxied, "live", "polling")
	proxiedLoads := loads(t, proxied)
	another := proto.CloneOf(added)
	another.ClientVpnEndpointId = proto.String("cvpn-endpoint-00000000000000002")
	if err := s.Put(another); err != nil {
		t.Fatal(err)
	}
	waitRows(t, polling, "the polling tab to show a new endpoint", func(keys []string) bool { return slices.Contains(keys, keyOf(another)) })
	if loads(t, polling) == pollingLoads {
		t.Errorf("the polling tab shows the change without reading the view again")
	}
	waitRows(t, proxied, "the tab behind the proxy to show a new endpoint", func(keys []string) bool { return slices.Contains(keys, keyOf(another)) })
	if loads(t, proxied) == proxiedLoads {
		t.Errorf("the tab behind the proxy shows the change without reading the view again")
	}
	waitRows(t, tab, "the live tab to show the same endpoint", func(keys []string) bool { return slices.Contains(keys, keyOf(another)) })
	noReload(t, tab, loadsBefore)

	// A service that cannot resume the page's version (this one keeps its
	// cache in memory: another data set, another history) resets the
	// stream: the page reads its view again and goes on live from there.
	if err := f.Stop(30 * time.Second); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	fresh := proto.CloneOf(added)
	fresh.ClientVpnEndpointId = proto.String("cvpn-endpoint-00000000000000003")
	if err := s.Put(fresh); err != nil {
		t.Fatal(err)
	}
	f = startFacade(t, s, "", args...)
	waitRows(t, tab, "the view read again after the reset", func(keys []string) bool { return slices.Contains(keys, keyOf(fresh)) })
	waitAttr(t, tab, "live", "live")
	if n := loads(t, tab); n <= loadsBefore {
		t.Errorf("after a reset the page did not read its view again (%d reads, %d before)", n, loadsBefore)
	}
	if mark := eval[string](t, tab, `window.liveMark || ''`); mark != "kept" {
		t.Errorf("the reset reloaded the whole page; it reads the view again in place")
	}
	if got, want := rowKeys(t, tab), apiPage(t, clients(f.url)["connect"], inRegion, 100, "").keys; !slices.Equal(got, want) {
		t.Errorf("after the reset the page shows %d rows, want the API's %d:\n got %v\nwant %v", len(got), len(want), head(got), head(want))
	}
}

// freeAddr returns a loopback address with a port free now, for a service
// that must come back on the same address.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// waitAttr waits until document.body.dataset[name] is value.
func waitAttr(t *testing.T, tab context.Context, name, value string) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		got := eval[string](t, tab, fmt.Sprintf(`document.body.dataset[%q] || ''`, name))
		if got == value {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("body data-%s is %q, want %q", name, got, value)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitRows waits until the table's row keys satisfy ok.
func waitRows(t *testing.T, tab context.Context, what string, ok func([]string) bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !ok(rowKeys(t, tab)) {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: the page shows %v (live: %s)", what, head(rowKeys(t, tab)), visibleText(t, tab, "#live"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// noReload checks the page was neither reloaded nor read its view again.
func noReload(t *testing.T, tab context.Context, loadsBefore int) {
	t.Helper()
	if mark := eval[string](t, tab, `window.liveMark || ''`); mark != "kept" {
		t.Errorf("the page was reloaded")
	}
	if n := loads(t, tab); n != loadsBefore {
		t.Errorf("the page read its view %d more times; live changes need none", n-loadsBefore)
	}
	if strings.Contains(visibleText(t, tab, "#error"), ":") {
		t.Errorf("the page shows an error: %s", visibleText(t, tab, "#error"))
	}
}

// noStreamsProxy serves a reverse proxy to target until the test ends that
// answers the watch stream with 502 Bad Gateway, as a proxy that cannot
// carry streams does, and passes everything else.
func noStreamsProxy(t *testing.T, target string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/WatchClientVpnEndpoints") {
			http.Error(w, "streams are not supported here", http.StatusBadGateway)
			return
		}
		proxy.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}
