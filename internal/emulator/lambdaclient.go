package emulator

import "github.com/aws/aws-sdk-go-v2/service/lambda"

// LambdaClient returns a Lambda client pointed at the emulator. The option
// functions are applied after the emulator's settings.
func (e *Emulator) LambdaClient(optFns ...func(*lambda.Options)) *lambda.Client {
	return lambda.NewFromConfig(e.AWSConfig(), optFns...)
}
