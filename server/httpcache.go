package server

import (
	"context"
	"hash/fnv"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/vpnfacade/vpnfacade/access"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
	"github.com/vpnfacade/vpnfacade/store"
)

// HTTP caching of reads.
//
// A snapshot answers every read until the next refresh replaces it, so an
// answer may be kept by a browser or a CDN until that refresh is due, and
// no longer: Cache-Control's max-age is the time left until then, rounded
// down, and "no-cache" (store, but revalidate every time) once it is
// overdue. The validators are the snapshot's: Last-Modified is its refresh
// time and the ETag names its version and refresh time. A Connect GET carrying a validator
// that still matches the current snapshot is answered 304 Not Modified by
// httpCache.middleware before connect-go decodes the request or the query
// runs.
//
// The ETag is weak (W/"…"): the same snapshot and request URL give the same
// answer, but not the same bytes on the wire, since connect-go compresses
// the body according to the request's Accept-Encoding, and a strong tag
// would have to differ per content coding (RFC 9110, 8.8.1 and 8.8.3).
// Comparisons of If-None-Match are weak for GET anyway (RFC 9110, 13.1.2),
// so a weak tag loses nothing. The codec is part of the tag: Connect GET
// names it in the query (encoding=proto or json), which the tag hashes.
//
// The snapshot's age is not sent as Age: under RFC 9111, 5.1, Age is the
// time a response has spent in caches since the origin generated or
// validated it, and a CDN adds its own residence time to it and subtracts
// it from the freshness lifetime. An origin sending the snapshot's age
// there would make every cache think the answer is that much older than it
// is. It goes in Snapshot-Age (seconds since the refresh) instead, and in
// the answer's SnapshotInfo.refreshed_at.
type httpCache struct {
	// reader tells the current snapshot to the 304 check.
	reader *Reader
	// refreshInterval is the time between refreshes; 0: unknown, answers
	// must be revalidated on every use.
	refreshInterval time.Duration
	// private marks answers as depending on who asks.
	private bool
	// auth, when access control is on, authenticates a conditional GET
	// before it may be answered 304.
	auth *access.Authenticator
	// now is the clock; nil is time.Now.
	now func() time.Time
}

// snapshotAgeHeader carries the seconds since the answer's snapshot was
// refreshed.
const snapshotAgeHeader = "Snapshot-Age"

func (c *httpCache) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

// cacheControl is the Cache-Control of an answer from a snapshot refreshed
// at refreshedAt: kept no later than the next refresh is due.
func (c *httpCache) cacheControl(refreshedAt time.Time) string {
	scope := "public"
	if c.private {
		scope = "private"
	}
	left := refreshedAt.Add(c.refreshInterval).Sub(c.clock())
	if c.refreshInterval <= 0 || left < time.Second {
		return scope + ", no-cache"
	}
	return scope + ", max-age=" + strconv.FormatInt(int64(left/time.Second), 10)
}

// setHeaders sets the caching headers of a successful read from view; an
// empty etag is not sent.
func (c *httpCache) setHeaders(h http.Header, view store.View, etag string) {
	h.Set("Cache-Control", c.cacheControl(view.RefreshedAt))
	h.Set("Last-Modified", view.RefreshedAt.UTC().Format(http.TimeFormat))
	h.Set(snapshotAgeHeader, ageSeconds(view.RefreshedAt))
	if etag != "" {
		h.Set("ETag", etag)
	}
	if c.private {
		h.Add("Vary", "Authorization")
	}
}

// etag is the weak entity tag of a GET of path?query answered from view:
// the snapshot version and what else of the snapshot the answer's
// SnapshotInfo carries (refresh time, staleness), and a hash of the
// request, codec included. The refresh time is needed because a refresh
// that finds nothing changed keeps the version and only moves the refresh
// time (store.Confirm): without it, a 304 would leave a client showing the
// previous refresh time.
func etag(view store.View, principal, path string, query url.Values) string {
	h := fnv.New64a()
	// With access rules, who asks decides what the answer holds.
	_, _ = h.Write([]byte(principal))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(path))
	_, _ = h.Write([]byte{'?'})
	_, _ = h.Write([]byte(query.Encode()))
	_, _ = h.Write(strconv.AppendInt(nil, view.RefreshedAt.UnixNano(), 10))
	stale := "f"
	if view.Stale() {
		stale = "s"
	}
	return `W/"` + strconv.FormatUint(view.Version, 10) + "-" + stale + "-" + strconv.FormatUint(h.Sum64(), 16) + `"`
}

// principalName returns the name of the caller's principal, "" when access
// control is off.
func principalName(ctx context.Context) string {
	if p, ok := access.FromContext(ctx); ok {
		return p.Name()
	}
	return ""
}

// setReadHeaders sets the caching headers of a successful Connect, gRPC or
// gRPC-Web read from view; a Connect GET gets an ETag too.
func (c *httpCache) setReadHeaders(ctx context.Context, info connect.CallInfo, view store.View) {
	tag := ""
	if info.HTTPMethod() == http.MethodGet {
		tag = etag(view, principalName(ctx), info.Spec().Procedure, info.Peer().Query)
	}
	c.setHeaders(info.ResponseHeader(), view, tag)
}

// notFound lets a NotFound answer from view to a Connect GET be cached
// until the next refresh, when the endpoint may appear; other errors are
// left to middleware, which makes them no-store. Only a GET is cacheable,
// and only Connect sends an error's metadata as headers: gRPC and gRPC-Web
// send it as trailers, where Cache-Control is not allowed (net/http drops it
// and logs "ignoring invalid trailer").
func (c *httpCache) notFound(ctx context.Context, err error, view store.View) error {
	ce, ok := err.(*connect.Error)
	if !ok || ce.Code() != connect.CodeNotFound {
		return err
	}
	if info, ok := connect.CallInfoForHandlerContext(ctx); !ok || info.HTTPMethod() != http.MethodGet {
		return err
	}
	ce.Meta().Set("Cache-Control", c.cacheControl(view.RefreshedAt))
	ce.Meta().Set(snapshotAgeHeader, ageSeconds(view.RefreshedAt))
	if c.private {
		ce.Meta().Add("Vary", "Authorization")
	}
	return err
}

// isCachedRead reports whether path is a read procedure served over GET.
func isCachedRead(path string) bool {
	return path == clientvpnv1connect.ClientVpnServiceListClientVpnEndpointsProcedure ||
		path == clientvpnv1connect.ClientVpnServiceGetClientVpnEndpointProcedure
}

// middleware answers a conditional GET of a read whose validator matches
// the current snapshot with 304 Not Modified, without running it, and
// makes every error answer not cacheable unless its handler said
// otherwise (see notFound).
func (c *httpCache) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && isCachedRead(r.URL.Path) &&
			(r.Header.Get("If-None-Match") != "" || r.Header.Get("If-Modified-Since") != "") &&
			c.notModified(w, r) {
			return
		}
		next.ServeHTTP(&errorCacheWriter{ResponseWriter: w}, r)
	})
}

// notModified writes a 304 and returns true when r's validators match the
// current snapshot's answer to r (RFC 9110, 13.2.2: If-None-Match, when
// present, decides alone).
func (c *httpCache) notModified(w http.ResponseWriter, r *http.Request) bool {
	view, err := c.reader.View(r.Context())
	if err != nil {
		return false // the handler answers with the error
	}
	principal := ""
	if c.auth != nil {
		// A 304 is an answer too: only to a caller the handler would answer.
		p, err := c.auth.HTTP(r)
		if err != nil {
			return false // the handler refuses it
		}
		principal = p.Name()
	}
	query := r.URL.Query()
	tag := etag(view, principal, r.URL.Path, query)
	if inm := r.Header.Values("If-None-Match"); len(inm) > 0 {
		if !etagListMatches(inm, tag) {
			return false
		}
	} else {
		since, err := http.ParseTime(r.Header.Get("If-Modified-Since"))
		if err != nil || view.RefreshedAt.Truncate(time.Second).After(since) {
			return false
		}
	}
	h := w.Header()
	c.setHeaders(h, view, tag)
	h.Add("Vary", "Accept-Encoding") // as the 200 it stands for
	w.WriteHeader(http.StatusNotModified)
	return true
}

// etagListMatches reports whether one of the If-None-Match field values
// matches tag by weak comparison. "*" is not taken as a match: it would
// answer 304 without knowing whether the request has an answer (an
// unknown id is a 404), and RFC 9110, 13.2.1, has preconditions ignored
// when the answer would not be a 2xx; a tag can only come from a 200 of
// the same request on the same snapshot.
func etagListMatches(values []string, tag string) bool {
	opaque := strings.TrimPrefix(tag, "W/")
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if strings.TrimPrefix(strings.TrimSpace(t), "W/") == opaque {
				return true
			}
		}
	}
	return false
}

// errorCacheWriter makes an error answer (status 400 and up) no-store
// unless its handler set a Cache-Control.
type errorCacheWriter struct {
	http.ResponseWriter
}

// WriteHeader implements http.ResponseWriter.
func (w *errorCacheWriter) WriteHeader(code int) {
	if code >= http.StatusBadRequest && w.Header().Get("Cache-Control") == "" {
		w.Header().Set("Cache-Control", "no-store")
	}
	w.ResponseWriter.WriteHeader(code)
}

// Flush implements http.Flusher, which gRPC streams need.
func (w *errorCacheWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *errorCacheWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
