package pipelinestoptest_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"

	"github.com/pipelinestop/pipelinestop/internal/sdkbody"
	"github.com/pipelinestop/pipelinestop/pipelinestoptest"
)

// TestNoWriteToIsInstalled: the exported option installs the workaround's
// middleware, and the server's AWSConfig carries it.
func TestNoWriteToIsInstalled(t *testing.T) {
	stack := middleware.NewStack("test", nil)
	if err := pipelinestoptest.NoWriteTo(stack); err != nil {
		t.Fatal(err)
	}
	if _, ok := stack.Finalize.Get(sdkbody.ID); !ok {
		t.Fatal("NoWriteTo added no middleware")
	}
	srv := pipelinestoptest.New(t, pipelinestoptest.Config{})
	cfg := srv.AWSConfig()
	found := false
	client := sqs.NewFromConfig(cfg, func(o *sqs.Options) {
		s := middleware.NewStack("probe", nil)
		for _, fn := range o.APIOptions {
			if err := fn(s); err != nil {
				t.Fatal(err)
			}
		}
		_, found = s.Finalize.Get(sdkbody.ID)
	})
	_ = client
	if !found {
		t.Error("AWSConfig's APIOptions lack NoWriteTo")
	}
}
