// Package usermodule is a user's service: on shutdown it stops the
// pipeline executions it started.
package usermodule

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/sagemaker"

	"github.com/pipelinestop/pipelinestop"
)

// Service remembers the executions it started.
type Service struct {
	Stopper    *pipelinestop.Stopper
	Executions []string
}

// New returns a Service that stops executions with client.
func New(client *sagemaker.Client) *Service {
	return &Service{Stopper: pipelinestop.New(client)}
}

// Shutdown stops every execution the service started.
func (s *Service) Shutdown(ctx context.Context) error {
	for _, arn := range s.Executions {
		if _, err := s.Stopper.Stop(ctx, arn); err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
	}
	return nil
}
