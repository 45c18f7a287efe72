//go:build tools

// Package tools keeps the Prometheus server and promtool commands in this module's dependency graph.
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
