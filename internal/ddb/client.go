package ddb

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// EndpointEnv names the environment variable that points the service at a
// DynamoDB other than AWS's, such as DynamoDB Local (http://127.0.0.1:8000).
const EndpointEnv = "DYNAMODB_ENDPOINT"

// NewClient returns a DynamoDB client configured from the standard AWS
// sources (environment, shared config, the Lambda execution role).
//
// When DYNAMODB_ENDPOINT is set the client talks to that endpoint instead,
// and, if no credentials are configured, uses static dummy credentials and
// region us-east-1, which DynamoDB Local accepts. For such an endpoint the
// CRC32 check of response bodies is disabled: DynamoDB Local sends some error
// responses whose X-Amz-Crc32 header does not match the body, which the SDK
// would otherwise report as "response did not match expected checksum". Against
// AWS the check stays on.
//
// It fails only when the AWS configuration cannot be loaded.
func NewClient(ctx context.Context, optFns ...func(*dynamodb.Options)) (*dynamodb.Client, error) {
	endpoint := os.Getenv(EndpointEnv)
	var loadOpts []func(*config.LoadOptions) error
	if endpoint != "" {
		if os.Getenv("AWS_REGION") == "" && os.Getenv("AWS_DEFAULT_REGION") == "" {
			loadOpts = append(loadOpts, config.WithRegion("us-east-1"))
		}
		if os.Getenv("AWS_ACCESS_KEY_ID") == "" {
			loadOpts = append(loadOpts, config.WithCredentialsProvider(
				credentials.NewStaticCredentialsProvider("local", "local", "")))
		}
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("ddb: load AWS config: %w", err)
	}
	return NewClientFromConfig(cfg, endpoint, optFns...), nil
}

// NewClientFromConfig returns a client for cfg. A non-empty endpoint is used
// as the base endpoint, with response checksum validation disabled as
// described at NewClient.
func NewClientFromConfig(cfg aws.Config, endpoint string, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
			o.DisableValidateResponseChecksum = true
		}
		for _, fn := range optFns {
			fn(o)
		}
	})
}
