// Package web serves vpnfacade's browser page: a static HTML page and its
// script, built from src/ with esbuild (npm run build) and committed, so the
// binary needs no Node.js. The page reads the API through Connect-Web.
package web

import (
	"embed"
	"net/http"
)

//go:embed index.html dist/app.js
var files embed.FS

// Handler serves the page at / and its script at /app.js.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'")
		http.ServeFileFS(w, r, files, "index.html")
	})
	mux.HandleFunc("GET /app.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, files, "dist/app.js")
	})
	return mux
}
