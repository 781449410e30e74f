// Package tui is cqlsniff's live terminal UI: a header with the capture's
// figures, the connections (with a badge for each diagnosis), the statements
// ranked by total time, the diagnoses in plain words, and a detail view with
// latency histograms and frames-per-segment distributions.
//
// It only reads snapshots: a refresher asks analyze's Snapshots for a report
// every interval and hands the immutable report to tview's event loop with
// QueueUpdateDraw, so the capture goroutine never waits for the screen and
// the views never see shared mutable state. Pausing freezes what is shown,
// not the capture. See README.md in this directory for the screen and keys.
package tui
