package server

import (
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// deadlines bounds the time of every unary request on its own stream, not
// on its connection: its body must arrive within readTimeout, and its
// response must be taken within writeTimeout of the body's end. Requests to
// streaming procedures are left alone: streams have their own rule. An
// http.Server's ReadTimeout and WriteTimeout would cut streams too.
type deadlines struct {
	next         http.Handler
	readTimeout  time.Duration
	writeTimeout time.Duration
	streaming    map[string]bool // paths of streaming procedures
}

// ServeHTTP implements http.Handler.
func (d *deadlines) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	if d.streaming[r.URL.Path] {
		// A deadline an earlier request set on this HTTP/1 connection
		// must not cut the stream.
		_ = rc.SetReadDeadline(time.Time{})
		_ = rc.SetWriteDeadline(time.Time{})
		d.next.ServeHTTP(w, r)
		return
	}
	now := time.Now()
	if r.Body != nil && r.Body != http.NoBody {
		// Without a body, there is nothing to time; on HTTP/1 the server
		// already reads the connection in the background, and a read
		// deadline would cancel the request.
		_ = rc.SetReadDeadline(now.Add(d.readTimeout))
		r.Body = &timedBody{ReadCloser: r.Body, rc: rc, writeTimeout: d.writeTimeout, w: w, http1: r.ProtoMajor == 1}
	}
	_ = rc.SetWriteDeadline(now.Add(d.readTimeout + d.writeTimeout))
	d.next.ServeHTTP(w, r)
}

// timedBody ends the read deadline when the body has arrived, and starts
// the write timeout from there. When the body does not arrive in time on
// HTTP/1, the connection is closed after the error response: the rest of
// the body would otherwise be read as the next request.
type timedBody struct {
	io.ReadCloser
	rc           *http.ResponseController
	writeTimeout time.Duration
	w            http.ResponseWriter
	http1        bool
	done         bool
}

// Read implements io.Reader.
func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case b.done:
	case errors.Is(err, io.EOF):
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
		_ = b.rc.SetWriteDeadline(time.Now().Add(b.writeTimeout))
	case errors.Is(err, os.ErrDeadlineExceeded) && b.http1:
		b.done = true
		b.w.Header().Set("Connection", "close")
	}
	return n, err
}

// libraryStreams are the streaming procedures of grpchealth and grpcreflect,
// whose descriptors are registered under other names.
var libraryStreams = []string{
	"/grpc.health.v1.Health/Watch",
	"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
	"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
}

// streamingProcedures returns the HTTP paths of the streaming methods of
// the named services, as their generated code registered them, and of
// libraryStreams.
func streamingProcedures(services ...string) map[string]bool {
	out := map[string]bool{}
	for _, p := range libraryStreams {
		out[p] = true
	}
	for _, name := range services {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
		if err != nil {
			continue
		}
		sd, ok := d.(protoreflect.ServiceDescriptor)
		if !ok {
			continue
		}
		for i := range sd.Methods().Len() {
			m := sd.Methods().Get(i)
			if m.IsStreamingClient() || m.IsStreamingServer() {
				out["/"+strings.TrimPrefix(string(sd.FullName()), ".")+"/"+string(m.Name())] = true
			}
		}
	}
	return out
}
