// Package migrations holds Slipway's database schema as golang-migrate files
// (NNNNNN_name.up.sql / .down.sql), embedded into the binary so that tests and
// production apply exactly the same schema.
package migrations

import "embed"

// FS holds every migration file.
//
//go:embed *.sql
var FS embed.FS
