package pipelinestop

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
)

// optionsClient is a client that tells its options, as *sagemaker.Client
// does (Options returns a copy).
type optionsClient interface {
	Options() sagemaker.Options
}

// clientRegion returns the Region of client's calls (its Options().Region)
// and whether client tells it: a *sagemaker.Client does, a test double
// usually does not.
func clientRegion(client any) (string, bool) {
	c, ok := client.(optionsClient)
	if sc, isSDK := client.(*sagemaker.Client); !ok || isSDK && sc == nil {
		return "", false
	}
	return c.Options().Region, true
}

// inRegion is the per-call option that sends a SageMaker call to region:
// the SDK resolves the endpoint of that Region (in its partition) and
// signs the request for it. A BaseEndpoint set on the client is kept
// (the SDK puts it before the resolved endpoint), so the call goes there,
// signed for region.
func inRegion(region string) func(*sagemaker.Options) {
	return func(o *sagemaker.Options) { o.Region = region }
}

// route makes the calls about execution a, made with o.ClientOptions,
// go to a's Region: it puts inRegion(a.Region) before the caller's
// ClientOptions (so that a Region set there still wins). It changes
// nothing when routing is off (Options.DisableRegionRouting), when the ARN
// has no Region, or when the client's Region is already a's; so a call in
// the client's own Region is made exactly as without routing. When a's
// Region is in another partition than the client's, route returns an
// *Error of Kind ErrPartitionMismatch for op, and no call must be made.
// The partitions are compared only when the client tells its Region and
// that Region has a known form (see RegionPartition): a test double, an
// emulator's "local" or a FIPS pseudo-Region is not compared.
func (o *Options) route(client any, a ExecutionARN, op string) error {
	if o.DisableRegionRouting || a.Region == "" {
		return nil
	}
	region, known := clientRegion(client)
	if known && region == a.Region {
		return nil
	}
	if cp, ok := RegionPartition(region); known && ok && cp != a.Partition {
		return &Error{Op: op, ExecutionARN: a.String(), Kind: ErrPartitionMismatch, Message: fmt.Sprintf(
			"the execution is in Region %s of partition %s, and the client's Region %s is in partition %s: "+
				"credentials of one partition cannot call another; use a client (credentials and Region) "+
				"of a Region of %s",
			a.Region, a.Partition, region, cp, a.Partition)}
	}
	o.ClientOptions = append([]func(*sagemaker.Options){inRegion(a.Region)}, o.ClientOptions...)
	return nil
}

// routeAnswer routes an answer to a callback step (op) to the Region of
// Options.CallbackExecutionARN, when set (see route). The ARN is checked
// first, with routing on or off: an invalid one is an error matching
// ErrInvalidARN that shows token redacted, were it in the ARN.
func (o *Options) routeAnswer(client any, token CallbackToken, op string) error {
	if o.CallbackExecutionARN == "" {
		return nil
	}
	a, err := parseExecutionARN(o.CallbackExecutionARN, token)
	if err != nil {
		return fmt.Errorf("%s: Options.CallbackExecutionARN: %w", opPrefix(op), err)
	}
	err = o.route(client, a, op)
	if e, ok := err.(*Error); ok {
		// The ARN of a message with its fields mixed up could hold the
		// token.
		e.ExecutionARN, e.Message = token.Redact(e.ExecutionARN), token.Redact(e.Message)
	}
	return err
}

// targetRegion is the Region the calls about arn go to, as route decides:
// the ARN's when routing is on and the ARN is valid and has a Region, else
// the client's ("" when the client does not tell it). StopAll keys its
// per-Region pacing by it.
func (o *Options) targetRegion(client any, arn string) string {
	if !o.DisableRegionRouting {
		if a, err := ParseExecutionARN(arn); err == nil && a.Region != "" {
			return a.Region
		}
	}
	region, _ := clientRegion(client)
	return region
}

// answerFor returns the option that routes an answer to the Region of the
// execution arn (Options.CallbackExecutionARN).
func answerFor(arn string) func(*Options) {
	return func(o *Options) { o.CallbackExecutionARN = arn }
}
