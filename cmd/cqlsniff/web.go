package main

import (
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/exporter-toolkit/web"

	"github.com/cqlsniff/cqlsniff/analyze"
	"github.com/cqlsniff/cqlsniff/metrics"
)

// checkWebConfig validates the --web.config.file (TLS certificate and key,
// client CAs, bcrypt hashes) the way the exporter toolkit will read it, so
// that a bad file is a usage error at start rather than a failed scrape.
//
// The toolkit reads the file again at every request and the certificate at
// every TLS handshake (so certificates can be rotated without a restart),
// as whatever user cqlsniff runs as by then: run calls this once before
// opening the capture and once after dropping privileges (dropped true).
func checkWebConfig(path string, dropped bool) error {
	if path == "" {
		return nil
	}
	err := web.Validate(path)
	if err == nil {
		return nil
	}
	// The YAML decoder's errors span several lines: one line for the user.
	msg := strings.Join(strings.Fields(err.Error()), " ")
	if dropped {
		return usageErr("--web.config.file %s: unreadable as uid %d after dropping privileges (%s): make it, its certificate and key readable by that user", path, os.Getuid(), msg)
	}
	return usageErr("--web.config.file %s: %s", path, msg)
}

// serveMetrics serves /metrics from the pipeline's snapshots until stop is
// called. Scrapes ask the pipeline for a fresh report; nothing touches the
// capture path. With a web configuration file the exporter toolkit adds
// TLS (optionally client certificates) and basic auth, as in
// node_exporter.
func serveMetrics(ln net.Listener, webConfig string, snaps *analyze.Snapshots, cfg metrics.Config, stderr io.Writer) (stop func()) {
	srv := &http.Server{
		Handler:           metrics.Handler(metrics.NewCollector(cfg, snaps)),
		ReadHeaderTimeout: 10 * time.Second,
		// TLS handshake failures (a plain-HTTP client, a missing client
		// certificate) are said here; in the terminal UI, nowhere.
		ErrorLog: log.New(stderr, "cqlsniff: metrics: ", 0),
	}
	// The toolkit logs its choices (TLS on, HTTP/2) at Info: only its
	// warnings and errors (a config that became unreadable) are shown.
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	flags := &web.FlagConfig{WebConfigFile: &webConfig}
	go func() {
		if err := web.Serve(ln, srv, flags, logger); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(stderr, "cqlsniff: metrics: %v\n", err)
		}
	}()
	return func() { srv.Close() }
}
