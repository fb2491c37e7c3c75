package pipelinestop_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"

	"github.com/pipelinestop/pipelinestop"
)

// One Stopper stops executions of several Regions: each call goes to the
// Region in the execution's ARN, whatever Region the client was configured
// for, and StopAll paces each Region on its own. An execution of another
// partition needs a client of that partition, and is refused before any
// call.
func ExampleStopper_StopAll_regions() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"))
	if err != nil {
		log.Fatal(err)
	}
	s := pipelinestop.New(sagemaker.NewFromConfig(cfg))
	results, _ := s.StopAll(ctx, []string{
		"arn:aws:sagemaker:eu-west-1:123456789012:pipeline/train/execution/k1x2y3z4w5v6",      // to eu-west-1
		"arn:aws:sagemaker:ap-southeast-2:123456789012:pipeline/train/execution/a1b2c3d4e5f6", // to ap-southeast-2
		"arn:aws-cn:sagemaker:cn-north-1:123456789012:pipeline/train/execution/q1w2e3r4t5y6",  // refused: partition aws-cn
	})
	for _, r := range results {
		if errors.Is(r.Err, pipelinestop.ErrPartitionMismatch) {
			fmt.Println("needs a client of partition aws-cn:", r.ExecutionARN)
		}
	}
}

// RegionPartition tells the partition of a Region, as the SDK's endpoint
// rules do; ParseExecutionARN rejects an ARN whose Region is of another
// partition than the one it names.
func ExampleRegionPartition() {
	for _, region := range []string{"eu-west-1", "cn-north-1", "us-gov-west-1", "us-isob-east-1", "local"} {
		p, ok := pipelinestop.RegionPartition(region)
		fmt.Println(region, p, ok)
	}
	_, err := pipelinestop.ParseExecutionARN("arn:aws:sagemaker:cn-north-1:123456789012:pipeline/train/execution/k1x2y3z4w5v6")
	fmt.Println(errors.Is(err, pipelinestop.ErrInvalidARN), errors.Is(err, pipelinestop.ErrPartitionMismatch))
	// Output:
	// eu-west-1 aws true
	// cn-north-1 aws-cn true
	// us-gov-west-1 aws-us-gov true
	// us-isob-east-1 aws-iso-b true
	// local  false
	// true true
}

// An execution whose Region is in another partition than the client's is
// refused before any call: credentials of one partition do not sign for
// another.
func ExampleErrPartitionMismatch() {
	client := sagemaker.New(sagemaker.Options{Region: "us-east-1"})
	_, err := pipelinestop.New(client).Stop(context.Background(),
		"arn:aws-cn:sagemaker:cn-north-1:123456789012:pipeline/train/execution/k1x2y3z4w5v6")
	fmt.Println(errors.Is(err, pipelinestop.ErrPartitionMismatch))
	fmt.Println(err)
	// Output:
	// true
	// stop pipeline execution arn:aws-cn:sagemaker:cn-north-1:123456789012:pipeline/train/execution/k1x2y3z4w5v6: the execution is in Region cn-north-1 of partition aws-cn, and the client's Region us-east-1 is in partition aws: credentials of one partition cannot call another; use a client (credentials and Region) of a Region of aws-cn
}

// Routing off, for a client that routes itself (a VPC endpoint of one
// Region): every call goes where the client sends it.
func ExampleOptions_disableRegionRouting() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	client := sagemaker.NewFromConfig(cfg, func(o *sagemaker.Options) {
		o.BaseEndpoint = aws.String("https://vpce-0123456789abcdef-abcdefgh.api.sagemaker.eu-west-1.vpce.amazonaws.com")
	})
	_ = pipelinestop.New(client, func(o *pipelinestop.Options) { o.DisableRegionRouting = true })
}
