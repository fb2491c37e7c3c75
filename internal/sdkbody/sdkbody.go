// Package sdkbody keeps the AWS SDK for Go v2 from closing, at random,
// the connection that carries a response it is still reading.
//
// # The defect it works around
//
// smithy-go (the SDK's HTTP layer) hands net/http the request body wrapped
// in a "safe" closer, and closes that body as soon as the HTTP client's Do
// returns, that is when the response's headers have arrived. When the
// request body has a WriteTo method (a JSON request's body is a
// *bytes.Reader, which has one), the wrapper keeps it, and after its Close
// the wrapper's WriteTo returns io.EOF as an error.
//
// net/http writes a body of known length in two steps: it copies
// Content-Length bytes (the server can answer as soon as they arrive), then
// copies what is left into io.Discard to check that nothing is, and io.Copy
// uses the body's WriteTo for that second copy. When the server answers
// before the transport's write loop reaches the second copy, which a
// server on the same host does at times, the SDK has already closed the
// body, WriteTo returns io.EOF, net/http takes it as a failed request write
// and closes the connection, and the part of the response not yet read
// into the client's 4 KiB read buffer is lost: the operation fails with
// "deserialization failed ... use of closed network connection". A
// ReceiveMessage of 10 messages (a response of several KiB) failed this way
// in 1 to 3 calls of 100 against the emulator on loopback; responses under
// 4 KiB are read whole from the buffer and never fail. Against AWS the
// answer comes a network round trip later, after the second copy, so the
// race is rare, but it is the same race (aws/aws-sdk-go-v2 issues #1825 and
// #2737). The SDK's retryer treats net.ErrClosed as retryable, and for
// ReceiveMessage that retry leaves the messages given to the lost attempt
// invisible for the visibility timeout.
//
// NoWriteTo removes the WriteTo method from the stream the SDK sends, so
// net/http's second copy calls Read, which the closed wrapper answers with
// (0, io.EOF): the end of the body, not an error.
package sdkbody

import (
	"context"
	"io"

	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// ID is the ID of NoWriteTo's middleware in the Finalize step.
const ID = "pipelinestop.NoBodyWriteTo"

// NoWriteTo is an API option (for aws.Config's APIOptions or a client's
// Options.APIOptions) that hides the WriteTo method of every request
// stream from net/http, so that a response arriving before the transport
// finished writing the request never makes it close the connection (see
// the package doc). The stream keeps its Seek method, so the SDK still
// rewinds it for retries. Streams of unknown length (*io.PipeReader) are
// left alone. Adding it twice is harmless.
func NoWriteTo(stack *middleware.Stack) error {
	if _, ok := stack.Finalize.Get(ID); ok {
		return nil
	}
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc(ID, hideWriteTo), middleware.After)
}

func hideWriteTo(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (
	middleware.FinalizeOutput, middleware.Metadata, error,
) {
	req, ok := in.Request.(*smithyhttp.Request)
	if !ok {
		return next.HandleFinalize(ctx, in)
	}
	stream := req.GetStream()
	if _, ok := stream.(io.WriterTo); !ok {
		return next.HandleFinalize(ctx, in)
	}
	if _, ok := stream.(*io.PipeReader); ok {
		return next.HandleFinalize(ctx, in)
	}
	var wrapped io.Reader = readOnly{stream}
	if s, ok := stream.(io.ReadSeeker); ok {
		wrapped = readSeeker{s}
	}
	r, err := req.SetStream(wrapped)
	if err != nil {
		return middleware.FinalizeOutput{}, middleware.Metadata{}, err
	}
	in.Request = r
	return next.HandleFinalize(ctx, in)
}

// readOnly is a reader with no other method.
type readOnly struct{ r io.Reader }

func (r readOnly) Read(p []byte) (int, error) { return r.r.Read(p) }

// readSeeker is a ReadSeeker with no other method.
type readSeeker struct{ s io.ReadSeeker }

func (r readSeeker) Read(p []byte) (int, error) { return r.s.Read(p) }

func (r readSeeker) Seek(offset int64, whence int) (int64, error) { return r.s.Seek(offset, whence) }
