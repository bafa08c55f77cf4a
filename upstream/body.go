package upstream

import (
	"context"
	"fmt"
	"io"

	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// WithoutRequestBodyWriteTo is an aws-sdk-go-v2 API option (for
// aws.Config.APIOptions or a client's Options.APIOptions) that adds
// requestBodyWithoutWriteTo to every call: the source's own clients use it,
// and so should any other client of this SDK version that calls an EC2
// endpoint fast enough to answer before net/http has finished sending (the
// facade over loopback, in the benchmarks).
func WithoutRequestBodyWriteTo(stack *middleware.Stack) error {
	return stack.Build.Add(requestBodyWithoutWriteTo{}, middleware.After)
}

// requestBodyWithoutWriteTo is a build-step middleware working around a race
// in smithy-go (v1.28): the request body it hands net/http implements
// io.WriterTo, whose WriteTo returns io.EOF as an error once smithy-go has
// closed the body, which it does as soon as the response headers arrive.
// net/http, after sending a body of known length, copies the rest of it to
// check that nothing is left; when the response is already there (a fast
// server, as over loopback), that copy fails with the EOF, and net/http
// closes the connection under the response being read: the attempt fails
// with "use of closed network connection" and is retried, one upstream call
// too many. Hiding WriteTo makes the copy go through Read, which reports a
// closed body as a plain end of stream.
type requestBodyWithoutWriteTo struct{}

// ID implements middleware.BuildMiddleware.
func (requestBodyWithoutWriteTo) ID() string { return "vpnfacade/upstream/requestBodyWithoutWriteTo" }

// HandleBuild implements middleware.BuildMiddleware.
func (requestBodyWithoutWriteTo) HandleBuild(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (
	middleware.BuildOutput, middleware.Metadata, error,
) {
	if req, ok := in.Request.(*smithyhttp.Request); ok {
		if s, ok := req.GetStream().(io.ReadSeeker); ok {
			if _, hasWriteTo := s.(io.WriterTo); hasWriteTo {
				r, err := req.SetStream(readSeeker{s})
				if err != nil {
					return middleware.BuildOutput{}, middleware.Metadata{}, fmt.Errorf("wrap request body: %w", err)
				}
				in.Request = r
			}
		}
	}
	return next.HandleBuild(ctx, in)
}

// readSeeker exposes only Read and Seek of the stream it wraps (Seek keeps
// the body rewindable for retries and its length known).
type readSeeker struct{ io.ReadSeeker }
