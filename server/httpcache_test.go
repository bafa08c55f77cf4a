package server_test

import (
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vpnfacade/vpnfacade/access"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
	"github.com/vpnfacade/vpnfacade/server"
	"github.com/vpnfacade/vpnfacade/store"
)

// cacheEnv serves a memory store's snapshot over loopback.
type cacheEnv struct {
	url   string
	store *store.Memory
}

func newCacheEnv(t *testing.T, refreshedAt time.Time, opts server.Options) *cacheEnv {
	t.Helper()
	st := store.NewMemory()
	if _, err := st.Publish(t.Context(), store.Publication{RefreshedAt: refreshedAt, Endpoints: fixture(120)}); err != nil {
		t.Fatal(err)
	}
	if opts.Reader == nil {
		opts.Reader = server.NewReader(server.ReaderOptions{Store: st})
	}
	opts.Registerer = prometheus.NewRegistry()
	return &cacheEnv{url: startServer(t, server.NewHandler(opts)), store: st}
}

// listURL is the Connect GET URL of a ListClientVpnEndpoints request given
// as JSON.
func (e *cacheEnv) listURL(encoding, message string) string {
	return e.url + clientvpnv1connect.ClientVpnServiceListClientVpnEndpointsProcedure +
		"?connect=v1&encoding=" + encoding + "&message=" + url.QueryEscape(message)
}

func (e *cacheEnv) getURL(id string) string {
	return e.url + clientvpnv1connect.ClientVpnServiceGetClientVpnEndpointProcedure +
		"?connect=v1&encoding=json&message=" + url.QueryEscape(`{"clientVpnEndpointId":"`+id+`"}`)
}

// get sends a GET with the given headers and returns the answer and its
// body.
func get(t *testing.T, u string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, body
}

// maxAge returns Cache-Control's max-age, or -1 when there is none.
func maxAge(t *testing.T, cc string) int {
	t.Helper()
	for d := range strings.SplitSeq(cc, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(d), "max-age="); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("Cache-Control %q: bad max-age", cc)
			}
			return n
		}
	}
	return -1
}

func TestGetETagRevalidation(t *testing.T) {
	t.Parallel()
	refreshedAt := time.Now().Add(-3 * time.Second).Truncate(time.Millisecond)
	e := newCacheEnv(t, refreshedAt, server.Options{RefreshInterval: time.Minute})
	u := e.listURL("json", `{"maxResults":50}`)

	res, body := get(t, u, nil)
	if res.StatusCode != http.StatusOK || len(body) == 0 {
		t.Fatalf("GET: %s, %d bytes", res.Status, len(body))
	}
	tag := res.Header.Get("ETag")
	if !strings.HasPrefix(tag, `W/"`) || !strings.HasSuffix(tag, `"`) {
		t.Fatalf("ETag = %q, want a weak entity tag", tag)
	}
	if got, want := res.Header.Get("Last-Modified"), refreshedAt.UTC().Format(http.TimeFormat); got != want {
		t.Errorf("Last-Modified = %q, want the refresh time %q", got, want)
	}
	cc := res.Header.Get("Cache-Control")
	if !strings.HasPrefix(cc, "public, ") || maxAge(t, cc) <= 0 {
		t.Errorf("Cache-Control = %q, want public with a max-age", cc)
	}
	if res.Header.Get("Age") != "" {
		t.Errorf("the origin sent Age %q", res.Header.Get("Age"))
	}

	res2, _ := get(t, u, nil)
	if got := res2.Header.Get("ETag"); got != tag {
		t.Errorf("ETag changed without a new snapshot: %q, then %q", tag, got)
	}
	if other, _ := get(t, e.listURL("proto", ""), nil); other.Header.Get("ETag") == tag {
		t.Errorf("another request (codec proto, no message) has the same ETag %q", tag)
	}

	// Revalidation: 304 without a body, with the same validators.
	for name, h := range map[string]map[string]string{
		"If-None-Match":          {"If-None-Match": tag},
		"If-None-Match, strong":  {"If-None-Match": `"x", ` + strings.TrimPrefix(tag, "W/")},
		"If-Modified-Since":      {"If-Modified-Since": res.Header.Get("Last-Modified")},
		"If-None-Match wins":     {"If-None-Match": tag, "If-Modified-Since": "Mon, 02 Jan 2006 15:04:05 GMT"},
		"gzip, as browsers send": {"If-None-Match": tag, "Accept-Encoding": "gzip"},
	} {
		res, body := get(t, u, h)
		if res.StatusCode != http.StatusNotModified || len(body) != 0 {
			t.Errorf("%s: %s with %d bytes, want 304 Not Modified without a body", name, res.Status, len(body))
		}
		if res.Header.Get("ETag") != tag || res.Header.Get("Cache-Control") == "" {
			t.Errorf("%s: 304 has ETag %q, Cache-Control %q; want the 200's", name, res.Header.Get("ETag"), res.Header.Get("Cache-Control"))
		}
	}
	for name, h := range map[string]map[string]string{
		"other tag":         {"If-None-Match": `W/"1-f-0"`},
		"modified since":    {"If-Modified-Since": refreshedAt.Add(-time.Minute).UTC().Format(http.TimeFormat)},
		"If-None-Match set": {"If-None-Match": `W/"1-f-0"`, "If-Modified-Since": res.Header.Get("Last-Modified")},
	} {
		if res, body := get(t, u, h); res.StatusCode != http.StatusOK || len(body) == 0 {
			t.Errorf("%s: %s with %d bytes, want 200 with the answer", name, res.Status, len(body))
		}
	}
	// "*" must not turn a request without an answer into a 304.
	if res, _ := get(t, e.getURL("cvpn-endpoint-00000000000000000"), map[string]string{"If-None-Match": "*"}); res.StatusCode != http.StatusNotFound {
		t.Errorf("If-None-Match: * on an unknown id: %s, want 404", res.Status)
	}
	for name, h := range map[string]map[string]string{
		"star on a 200": {"If-None-Match": "*"},
	} {
		if res, body := get(t, u, h); res.StatusCode != http.StatusOK || len(body) == 0 {
			t.Errorf("%s: %s with %d bytes, want 200 with the answer", name, res.Status, len(body))
		}
	}

	// A refresh that found nothing changed keeps the version but moves the
	// refresh time, which the answer carries: the tag changes too.
	confirmedAt := refreshedAt.Add(time.Second)
	if _, err := e.store.Confirm(t.Context(), store.Confirmation{Version: 1, RefreshedAt: confirmedAt}); err != nil {
		t.Fatal(err)
	}
	res4, body4 := get(t, u, map[string]string{"If-None-Match": tag})
	if res4.StatusCode != http.StatusOK || len(body4) == 0 || res4.Header.Get("ETag") == tag {
		t.Fatalf("after a confirmed refresh, the old tag got %s with %d bytes and ETag %q, want 200 with a new tag", res4.Status, len(body4), res4.Header.Get("ETag"))
	}
	if got, want := res4.Header.Get("Last-Modified"), confirmedAt.UTC().Format(http.TimeFormat); got != want {
		t.Errorf("Last-Modified after a confirmed refresh = %q, want %q", got, want)
	}
	tag = res4.Header.Get("ETag")

	// A new snapshot: a new tag, and the old one no longer matches.
	if _, err := e.store.Publish(t.Context(), store.Publication{RefreshedAt: time.Now(), Endpoints: fixture(121)}); err != nil {
		t.Fatal(err)
	}
	res3, body3 := get(t, u, map[string]string{"If-None-Match": tag})
	if res3.StatusCode != http.StatusOK || len(body3) == 0 {
		t.Fatalf("after a new snapshot, the old tag got %s with %d bytes, want 200", res3.Status, len(body3))
	}
	if got := res3.Header.Get("ETag"); got == tag || got == "" {
		t.Errorf("ETag after a new snapshot = %q, was %q", got, tag)
	}
}

func TestMaxAgeNeverPastNextRefresh(t *testing.T) {
	t.Parallel()
	const interval = time.Minute
	for _, ago := range []time.Duration{0, time.Second, 30 * time.Second, 59 * time.Second, 59*time.Second + 900*time.Millisecond, interval, 2 * time.Hour} {
		refreshedAt := time.Now().Add(-ago)
		e := newCacheEnv(t, refreshedAt, server.Options{RefreshInterval: interval})
		before := time.Now()
		for _, u := range []string{e.listURL("json", "{}"), e.getURL("cvpn-endpoint-00000000000000000")} {
			res, _ := get(t, u, nil)
			cc := res.Header.Get("Cache-Control")
			// The answer may be kept no later than the next refresh is due.
			left := refreshedAt.Add(interval).Sub(before)
			n := maxAge(t, cc)
			switch {
			case left < time.Second:
				if n != -1 || !strings.Contains(cc, "no-cache") {
					t.Errorf("refreshed %s ago (%s): Cache-Control %q, want no-cache: the refresh is due", ago, res.Status, cc)
				}
			case n < 0 || time.Duration(n)*time.Second > left:
				t.Errorf("refreshed %s ago (%s): Cache-Control %q reaches past the next refresh, %s away", ago, res.Status, cc, left)
			case time.Duration(n)*time.Second < left-5*time.Second:
				t.Errorf("refreshed %s ago (%s): max-age %d, far below the %s left", ago, res.Status, n, left)
			}
		}
	}
	// Without a known interval, answers are revalidated on every use.
	e := newCacheEnv(t, time.Now(), server.Options{})
	if res, _ := get(t, e.listURL("json", "{}"), nil); res.Header.Get("Cache-Control") != "public, no-cache" {
		t.Errorf("no interval: Cache-Control %q, want public, no-cache", res.Header.Get("Cache-Control"))
	}
}

func TestErrorsAreNotStored(t *testing.T) {
	t.Parallel()
	e := newCacheEnv(t, time.Now(), server.Options{RefreshInterval: time.Minute})
	for name, u := range map[string]string{
		"invalid argument": e.listURL("json", `{"maxResults":-1}`),
		"bad token":        e.listURL("json", `{"nextToken":"abc"}`),
		"missing id":       e.getURL(""),
		"bad message":      e.listURL("json", `{`),
	} {
		res, _ := get(t, u, nil)
		if res.StatusCode < 400 || res.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: %s, Cache-Control %q; want an error with no-store", name, res.Status, res.Header.Get("Cache-Control"))
		}
	}
	// Too old to serve: unavailable, not stored, and no 304 either.
	old := newCacheEnv(t, time.Now().Add(-time.Hour), server.Options{RefreshInterval: time.Minute})
	res, _ := get(t, old.listURL("json", "{}"), nil)
	tag := res.Header.Get("ETag")
	st := old.store
	stale := server.NewHandler(server.Options{Reader: server.NewReader(server.ReaderOptions{Store: st, MaxStaleness: time.Minute}), RefreshInterval: time.Minute})
	staleURL := startServer(t, stale)
	res, _ = get(t, staleURL+strings.TrimPrefix(old.listURL("json", "{}"), old.url), map[string]string{"If-None-Match": tag})
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("too old: %s, Cache-Control %q; want 503 with no-store", res.Status, res.Header.Get("Cache-Control"))
	}

	// NotFound may be kept until the next refresh, when the endpoint may
	// appear.
	res, _ = get(t, e.getURL("cvpn-endpoint-00000000000000000"), nil)
	if cc := res.Header.Get("Cache-Control"); res.StatusCode != http.StatusNotFound || !strings.HasPrefix(cc, "public, ") || maxAge(t, cc) <= 0 || maxAge(t, cc) > 60 {
		t.Errorf("not found: %s, Cache-Control %q; want 404 kept at most until the next refresh", res.Status, cc)
	}
}

func TestCacheHeadersWithCORSAndPrivate(t *testing.T) {
	t.Parallel()
	const origin = "https://console.example.test"
	for _, private := range []bool{false, true} {
		e := newCacheEnv(t, time.Now(), server.Options{RefreshInterval: time.Minute, AllowedOrigins: []string{origin}, Private: private})
		u := e.listURL("json", "{}")
		res, _ := get(t, u, map[string]string{"Origin": origin})
		notModified, _ := get(t, u, map[string]string{"Origin": origin, "If-None-Match": res.Header.Get("ETag")})
		if notModified.StatusCode != http.StatusNotModified {
			t.Fatalf("private %v: revalidation got %s", private, notModified.Status)
		}
		notFound, _ := get(t, e.getURL("cvpn-endpoint-00000000000000000"), map[string]string{"Origin": origin})
		for name, r := range map[string]*http.Response{"200": res, "304": notModified, "404": notFound} {
			vary := strings.Join(r.Header.Values("Vary"), ",")
			if !strings.Contains(vary, "Origin") {
				t.Errorf("private %v, %s: Vary %q lacks Origin", private, name, vary)
			}
			cc := r.Header.Get("Cache-Control")
			if private != strings.HasPrefix(cc, "private, ") || !private != strings.HasPrefix(cc, "public, ") {
				t.Errorf("private %v, %s: Cache-Control %q", private, name, cc)
			}
			if private != strings.Contains(vary, "Authorization") {
				t.Errorf("private %v, %s: Vary %q", private, name, vary)
			}
		}
		exposed := strings.Split(strings.ToLower(res.Header.Get("Access-Control-Expose-Headers")), ",")
		for i := range exposed {
			exposed[i] = strings.TrimSpace(exposed[i])
		}
		for _, h := range []string{"etag", "snapshot-age"} {
			if !slices.Contains(exposed, h) {
				t.Errorf("Access-Control-Expose-Headers %q lacks %s", res.Header.Get("Access-Control-Expose-Headers"), h)
			}
		}
	}
}

// TestEC2RequestIDHeader reads the request id as the AWS SDK for
// JavaScript v3 does (its deserializeMetadata: the lower-cased header
// x-amzn-requestid, then x-amzn-request-id, then x-amz-request-id) and
// finds the body's on a success and on errors.
func TestEC2RequestIDHeader(t *testing.T) {
	t.Parallel()
	e := newCacheEnv(t, time.Now(), server.Options{RefreshInterval: time.Minute})
	for _, tc := range []struct {
		body   string
		status int
	}{
		{"Action=DescribeClientVpnEndpoints&Version=2016-11-15&MaxResults=5", 200},
		{"Action=DescribeClientVpnEndpoints&Version=2016-11-15&ClientVpnEndpointId.1=cvpn-endpoint-00000000000000000", 400},
		{"Action=RunInstances&Version=2016-11-15", 400},
	} {
		res, err := http.Post(e.url+"/", "application/x-www-form-urlencoded", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != tc.status {
			t.Fatalf("%s: %s, want %d", tc.body, res.Status, tc.status)
		}
		headers := map[string]string{} // as Node hands them to the SDK
		for k, v := range res.Header {
			headers[strings.ToLower(k)] = strings.Join(v, ", ")
		}
		sdkID := headers["x-amzn-requestid"]
		if sdkID == "" {
			sdkID = headers["x-amzn-request-id"]
		}
		if sdkID == "" {
			sdkID = headers["x-amz-request-id"]
		}
		var doc struct {
			RequestID      string `xml:"requestId"` // a success
			ErrorRequestID string `xml:"RequestID"` // an error
		}
		if err := xml.Unmarshal(body, &doc); err != nil {
			t.Fatalf("%s: %v", tc.body, err)
		}
		bodyID := doc.RequestID + doc.ErrorRequestID
		if sdkID == "" || sdkID != bodyID {
			t.Errorf("%s: $metadata.requestId would be %q, the body's request id is %q", tc.body, sdkID, bodyID)
		}
		cc := res.Header.Get("Cache-Control")
		if tc.status == 200 && (!strings.HasPrefix(cc, "public, ") || maxAge(t, cc) <= 0 || res.Header.Get("Last-Modified") == "") {
			t.Errorf("%s: Cache-Control %q, Last-Modified %q", tc.body, cc, res.Header.Get("Last-Modified"))
		}
		if tc.status != 200 && cc != "no-store" {
			t.Errorf("%s: error with Cache-Control %q, want no-store", tc.body, cc)
		}
	}
}

// TestNotFoundOverGRPCSendsNoCacheTrailer reads a missing endpoint over gRPC
// and gRPC-Web: the answer is NotFound, and the server does not try to send
// Cache-Control as a trailer, which HTTP forbids (net/http drops it and
// logs "ignoring invalid trailer"); only a Connect GET is cacheable.
func TestNotFoundOverGRPCSendsNoCacheTrailer(t *testing.T) {
	st := store.NewMemory()
	if _, err := st.Publish(t.Context(), store.Publication{RefreshedAt: time.Now(), Endpoints: fixture(3)}); err != nil {
		t.Fatal(err)
	}
	h := server.NewHandler(server.Options{Reader: server.NewReader(server.ReaderOptions{Store: st}), RefreshInterval: time.Minute})
	base, serverLog := startServerLogging(t, h)

	for name, opt := range map[string]connect.ClientOption{"grpc": connect.WithGRPC(), "grpcweb": connect.WithGRPCWeb()} {
		client := clientvpnv1connect.NewClientVpnServiceClient(h2cClient(), base, opt)
		_, err := client.GetClientVpnEndpoint(t.Context(), &clientvpnv1.GetClientVpnEndpointRequest{ClientVpnEndpointId: "cvpn-endpoint-00000000000000000"})
		if connect.CodeOf(err) != connect.CodeNotFound {
			t.Fatalf("%s: %v, want NotFound", name, err)
		}
		if cc := err.(*connect.Error).Meta().Get("Cache-Control"); cc != "" {
			t.Errorf("%s: NotFound carries Cache-Control %q in its metadata", name, cc)
		}
	}
	if strings.Contains(serverLog.String(), "trailer") {
		t.Errorf("the server logged:\n%s", serverLog.String())
	}
}

// TestUnauthenticatedChallengeIsAHeader calls without credentials on every
// protocol: each gets Unauthenticated; Connect and gRPC-Web carry the
// WWW-Authenticate challenge, and gRPC, whose error metadata travels as HTTP
// trailers where the header is not allowed, does not make the server log
// "ignoring invalid trailer".
func TestUnauthenticatedChallengeIsAHeader(t *testing.T) {
	st := store.NewMemory()
	if _, err := st.Publish(t.Context(), store.Publication{RefreshedAt: time.Now(), Endpoints: fixture(3)}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "access.yaml")
	yaml := "principals:\n  - name: reader\n    tokens_sha256: [\"" + strings.Repeat("ab", 32) + "\"]\n    accounts: [\"*\"]\n    regions: [\"*\"]\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	auth, err := access.New(access.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	h := server.NewHandler(server.Options{Reader: server.NewReader(server.ReaderOptions{Store: st}), Access: auth})
	base, serverLog := startServerLogging(t, h)

	for name, opts := range map[string][]connect.ClientOption{"connect": nil, "grpc": {connect.WithGRPC()}, "grpcweb": {connect.WithGRPCWeb()}} {
		client := clientvpnv1connect.NewClientVpnServiceClient(h2cClient(), base, opts...)
		_, err := client.ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{})
		if connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Fatalf("%s: %v, want Unauthenticated", name, err)
		}
		challenge := err.(*connect.Error).Meta().Get("WWW-Authenticate")
		if want := name != "grpc"; want != (challenge != "") {
			t.Errorf("%s: WWW-Authenticate %q", name, challenge)
		}
	}
	if strings.Contains(serverLog.String(), "trailer") {
		t.Errorf("the server logged:\n%s", serverLog.String())
	}
}
