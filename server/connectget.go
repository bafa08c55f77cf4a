package server

import (
	"encoding/base64"
	"net/http"

	"connectrpc.com/connect"
)

// connectGETBase64 answers a Connect GET request whose message parameter is
// not the URL-safe base64 it claims to be (base64=1) with invalid_argument
// (HTTP 400) naming the parameter. connect-go v1.21 reports it as unknown
// (HTTP 500), as if the server had failed.
type connectGETBase64 struct {
	next   http.Handler
	errors *connect.ErrorWriter
}

// ServeHTTP implements http.Handler.
func (c *connectGETBase64) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.RawQuery != "" {
		q := r.URL.Query()
		if q.Get("base64") == "1" && q.Has("message") && c.errors.IsSupported(r) {
			if err := checkQueryBase64(q.Get("message")); err != nil {
				_ = c.errors.Write(w, r, connect.NewError(connect.CodeInvalidArgument, errorString(
					"the message query parameter is not URL-safe base64 (base64=1): "+err.Error())))
				return
			}
		}
	}
	c.next.ServeHTTP(w, r)
}

// checkQueryBase64 decodes s as connect-go does: URL-safe base64, padded
// when its length is a multiple of 4, else unpadded.
func checkQueryBase64(s string) error {
	enc := base64.URLEncoding
	if len(s)%4 != 0 {
		enc = base64.RawURLEncoding
	}
	_, err := enc.DecodeString(s)
	return err
}
