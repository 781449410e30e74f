// Package metrics exposes cqlsniff's reports to Prometheus, for fleet views:
// one cqlsniff per node, one scrape target each, dashboards and alerts over
// the whole cluster.
//
// It reads analyze's immutable report snapshots and nothing else: a scrape
// asks the pipeline for a fresh snapshot and turns the newest one into
// metrics, so the capture path gains no lock, no shared counter and no work
// per packet. Reports describe connections, which come and go; the
// Collector folds them into series per (client IP, server, driver) and per
// statement fingerprint, keeps its own monotonic accumulators so that
// counters never go down when a connection closes or leaves the report, and
// bounds every label by a cap (values beyond it share the label value
// "other").
//
// The exposition is documented in deploy/README.md; the metric names are a
// contract in the same way as the JSON report: added to, never renamed.
package metrics
