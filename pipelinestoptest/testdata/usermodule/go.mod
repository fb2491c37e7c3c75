// Module usermodule is a user's module outside this repository's packages:
// its test imports pipelinestoptest as any user would. TestSeparateModule
// in pipelinestoptest runs it; the replace directive points at this
// checkout instead of a published version.
module example.com/usermodule

go 1.26.0

require (
	github.com/aws/aws-sdk-go-v2 v1.48.0
	github.com/aws/aws-sdk-go-v2/service/sagemaker v1.288.1
	github.com/aws/aws-sdk-go-v2/service/sqs v1.52.11
	github.com/pipelinestop/pipelinestop v0.0.0
)

require (
	github.com/aws/aws-sdk-go-v2/credentials v1.21.0 // indirect
	github.com/aws/aws-sdk-go-v2/internal/configsources v1.5.12 // indirect
	github.com/aws/aws-sdk-go-v2/internal/endpoints/v2 v2.8.12 // indirect
	github.com/aws/smithy-go v1.28.9 // indirect
	github.com/cenkalti/backoff/v4 v4.3.0 // indirect
)

replace github.com/pipelinestop/pipelinestop => ../../..
