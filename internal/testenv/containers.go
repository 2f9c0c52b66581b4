package testenv

import (
	"context"
	"fmt"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
	"github.com/testcontainers/testcontainers-go/wait"
)

// dockerAvailable reports whether a Docker engine answers. A Docker client
// alone (no engine) is common on CI machines and laptops: it does not count.
func dockerAvailable() (ok bool) {
	defer func() {
		if recover() != nil { // testcontainers panics on some broken setups
			ok = false
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, err := testcontainers.NewDockerProvider()
	if err != nil {
		return false
	}
	defer p.Close()
	return p.Health(ctx) == nil
}

func startPostgresContainer() (string, error) {
	ctx := context.Background()
	c, err := tcpostgres.Run(ctx, "postgres:15-alpine",
		tcpostgres.WithDatabase("postgres"),
		tcpostgres.WithUsername("slipway"),
		tcpostgres.WithPassword("slipway"),
		tcpostgres.BasicWaitStrategies(),
	)
	if err != nil {
		return "", err
	}
	return c.ConnectionString(ctx, "sslmode=disable")
}

func startMinioContainer() (S3, error) {
	ctx := context.Background()
	const user, pass = "slipway-test", "slipway-test-secret"
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:        "minio/minio:RELEASE.2025-04-22T22-12-26Z",
			Cmd:          []string{"server", "/data"},
			Env:          map[string]string{"MINIO_ROOT_USER": user, "MINIO_ROOT_PASSWORD": pass},
			ExposedPorts: []string{"9000/tcp"},
			WaitingFor:   wait.ForHTTP("/minio/health/live").WithPort("9000/tcp"),
		},
		Started: true,
	})
	if err != nil {
		return S3{}, err
	}
	ep, err := c.PortEndpoint(ctx, "9000/tcp", "http")
	if err != nil {
		return S3{}, fmt.Errorf("minio endpoint: %w", err)
	}
	return S3{Endpoint: ep, AccessKey: user, SecretKey: pass}, nil
}
