package server

import (
	"encoding/base64"
	"io"
	"net/http"
	"strconv"

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

// maxDrainedBody is the largest refused HTTP/1 body read and discarded
// before the refusal is sent.
const maxDrainedBody = 1 << 20

// drainBody reads and discards a refused HTTP/1 request body of length
// bytes when it is at most maxDrainedBody, and reports whether it did. An
// HTTP/1 client sends its whole body before it reads the answer: refused
// unread, the connection is closed under a client still writing, which
// then sees a reset instead of the answer. Reading a bounded body costs
// little (the request's read deadline and the per-address rate limit still
// apply); a larger one is refused unread, and its connection closed.
func drainBody(body io.Reader, length int64) bool {
	if length > maxDrainedBody || body == nil {
		return false
	}
	n, err := io.Copy(io.Discard, io.LimitReader(body, maxDrainedBody+1))
	return err == nil && n == length
}

// bodyLimit refuses a request body larger than max bytes without reading
// it: at once when its Content-Length says so (Connect, gRPC and gRPC-Web
// get resource_exhausted in their protocol; anything else, such as the EC2
// endpoint, 413), and otherwise as soon as max bytes have been read, where
// connect-go would read the rest to reuse the connection.
type bodyLimit struct {
	next   http.Handler
	max    int64
	errors *connect.ErrorWriter
}

// ServeHTTP implements http.Handler.
func (b *bodyLimit) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The EC2 endpoint (POST /) refuses it in its own error format.
	if ec2 := r.Method == http.MethodPost && r.URL.Path == "/"; r.ContentLength > b.max && !ec2 {
		msg := "the request body of " + strconv.FormatInt(r.ContentLength, 10) +
			" bytes is larger than the limit of " + strconv.FormatInt(b.max, 10)
		if r.ProtoMajor == 1 && !drainBody(r.Body, r.ContentLength) {
			// The unread body would be taken for the next request. On
			// HTTP/2 the stream alone is reset: closing the connection
			// would only cost both sides a new one.
			w.Header().Set("Connection", "close")
		}
		if b.errors.IsSupported(r) {
			_ = b.errors.Write(w, r, connect.NewError(connect.CodeResourceExhausted, errorString(msg)))
		} else {
			http.Error(w, msg, http.StatusRequestEntityTooLarge)
		}
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, b.max)
	}
	b.next.ServeHTTP(w, r)
}
