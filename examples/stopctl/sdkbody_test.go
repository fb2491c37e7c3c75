package main

import (
	"context"
	"testing"

	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/pipelinestop/pipelinestop/internal/sdkbody"
)

// stopctl's SDK clients carry sdkbody.NoWriteTo (issue 14: without it the
// SDK now and then lost a ReceiveMessage answer from "stopctl emulator").
func TestAWSConfigKeepsConnectionUnderAnswers(t *testing.T) {
	isolateAWS(t)
	e := &env{g: globals{region: "us-east-1"}}
	cfg, err := e.awsConfig(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	stack := middleware.NewStack("op", smithyhttp.NewStackRequest)
	for _, opt := range cfg.APIOptions {
		if err := opt(stack); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := stack.Finalize.Get(sdkbody.ID); !ok {
		t.Fatalf("the clients' middleware lacks %s:\n%s", sdkbody.ID, stack)
	}
}
