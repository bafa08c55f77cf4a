package web_test

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/vpnfacade/vpnfacade/web"
)

func get(t *testing.T, h http.Handler, target string, header http.Header) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	r := res.Body
	if res.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPage checks the headers a browser relies on: the policy lets the
// page's own style and script run and nothing else, the page is revalidated
// and the script it names is cached for good.
func TestPage(t *testing.T) {
	h := web.Handler()
	res := get(t, h, "/", nil)
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	page := body(t, res)
	csp := res.Header.Get("Content-Security-Policy")
	style := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(page)
	if style == nil {
		t.Fatal("the page has no style sheet")
	}
	sum := sha256.Sum256([]byte(style[1]))
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'",
		"style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") {
		t.Errorf("Content-Security-Policy allows unsafe sources: %q", csp)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("the page's Cache-Control = %q, want no-cache (revalidate)", cc)
	}
	etag := res.Header.Get("ETag")
	if res := get(t, h, "/", http.Header{"If-None-Match": {etag}}); res.StatusCode != http.StatusNotModified {
		t.Errorf("GET / with its ETag = %d, want 304", res.StatusCode)
	}

	src := regexp.MustCompile(`<script type="module" src="(/app\.js\?v=[0-9a-f]+)">`).FindStringSubmatch(page)
	if src == nil {
		t.Fatalf("the page does not name its script by hash:\n%.400s", page)
	}
	res = get(t, h, src[1], http.Header{"Accept-Encoding": {"gzip, br"}})
	if cc := res.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
		t.Errorf("the hashed script's Cache-Control = %q", cc)
	}
	if res.Header.Get("Content-Encoding") != "gzip" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("the script is served with Content-Encoding %q, X-Content-Type-Options %q",
			res.Header.Get("Content-Encoding"), res.Header.Get("X-Content-Type-Options"))
	}
	gz := body(t, res)
	plain := body(t, get(t, h, src[1], nil))
	if gz != plain || !strings.Contains(plain, "listClientVpnEndpoints") {
		t.Errorf("the gzipped script (%d bytes) differs from the plain one (%d bytes), or is not the page's", len(gz), len(plain))
	}
	// Another version's URL is not cached for good: a page of an older
	// binary must not pin this script.
	if cc := get(t, h, "/app.js?v=0000", nil).Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("a script URL with another hash has Cache-Control %q, want no-cache", cc)
	}
}
