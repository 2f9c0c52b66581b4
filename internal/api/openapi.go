package api

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
)

//go:embed openapi.yaml
var openapiYAML []byte

// Document is the OpenAPI 3 description of the API, written in YAML for
// people and served as JSON at /api/v1/openapi.json.
type Document struct {
	Spec *openapi3.T
	json []byte
}

// LoadDocument parses and validates the embedded document.
func LoadDocument() (*Document, error) {
	loader := openapi3.NewLoader()
	spec, err := loader.LoadFromData(openapiYAML)
	if err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	if err := spec.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	return &Document{Spec: spec, json: b}, nil
}

// Serve answers the document.
func (d *Document) Serve(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-cache")
	return c.JSONBlob(http.StatusOK, d.json)
}
