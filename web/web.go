// Package web serves vpnfacade's browser page: a static HTML page and its
// script, built from src/ with esbuild (npm run build) and committed, so the
// binary needs no Node.js. The page reads the API through Connect-Web.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
)

//go:embed index.html dist/app.js
var files embed.FS

// styleBlock finds the page's one inline style sheet, whose hash the content
// security policy allows.
var styleBlock = regexp.MustCompile(`(?s)<style>(.*?)</style>`)

// asset is one file, ready to serve as is or gzipped.
type asset struct {
	contentType string
	body        []byte
	gzipped     []byte
	etag        string
}

func newAsset(contentType string, body []byte) (*asset, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, fmt.Errorf("web: gzip writer: %w", err)
	}
	if _, err := zw.Write(body); err != nil {
		return nil, fmt.Errorf("web: gzip: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("web: gzip: %w", err)
	}
	sum := sha256.Sum256(body)
	return &asset{contentType: contentType, body: body, gzipped: buf.Bytes(), etag: hex.EncodeToString(sum[:8])}, nil
}

// serve writes the asset with its validators, gzipped when the client accepts it.
func (a *asset) serve(w http.ResponseWriter, r *http.Request, cacheControl string) {
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", cacheControl)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Add("Vary", "Accept-Encoding")
	body, etag := a.body, a.etag
	if acceptsGzip(r) {
		body, etag = a.gzipped, a.etag+"-gz"
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("ETag", `"`+etag+`"`)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(name) == "gzip" && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// Handler serves the page at / and its script at /app.js.
//
// The page is revalidated on every load (Cache-Control: no-cache, with an
// ETag) and names its script by content hash (/app.js?v=<hash>), so the
// script is cached for a year and a new binary's page fetches its own. The
// page's content security policy allows only this origin's script, the
// page's own inline style sheet (by hash) and Connect calls to this origin.
func Handler() http.Handler {
	page, script, csp, err := build()
	if err != nil {
		// The embedded files are fixed at build time and checked by the
		// package's tests: failing here is a build defect.
		panic(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", csp)
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("X-Frame-Options", "DENY")
		page.serve(w, r, "no-cache")
	})
	mux.HandleFunc("GET /app.js", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("v") == script.etag {
			script.serve(w, r, "public, max-age=31536000, immutable")
			return
		}
		script.serve(w, r, "no-cache")
	})
	return mux
}

// build prepares the page, naming the script by its hash, the script, and
// the page's content security policy.
func build() (page, script *asset, csp string, err error) {
	js, err := files.ReadFile("dist/app.js")
	if err != nil {
		return nil, nil, "", fmt.Errorf("web: read the script: %w", err)
	}
	script, err = newAsset("text/javascript; charset=utf-8", js)
	if err != nil {
		return nil, nil, "", err
	}
	html, err := files.ReadFile("index.html")
	if err != nil {
		return nil, nil, "", fmt.Errorf("web: read the page: %w", err)
	}
	const src = `src="/app.js"`
	if !bytes.Contains(html, []byte(src)) {
		return nil, nil, "", fmt.Errorf("web: the page does not load %s", src)
	}
	html = bytes.Replace(html, []byte(src), []byte(`src="/app.js?v=`+script.etag+`"`), 1)
	m := styleBlock.FindSubmatch(html)
	if m == nil {
		return nil, nil, "", fmt.Errorf("web: the page has no <style> block")
	}
	sum := sha256.Sum256(m[1])
	csp = "default-src 'none'; script-src 'self'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; " +
		"connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	page, err = newAsset("text/html; charset=utf-8", html)
	if err != nil {
		return nil, nil, "", err
	}
	return page, script, csp, nil
}
