package tui

import (
	"strings"
	"testing"
)

// TestDiagnosesNewestFirst: a diagnosis that appears later shows above the
// older ones, wherever the report lists it.
func TestDiagnosesNewestFirst(t *testing.T) {
	first := handReport()
	first.Diagnoses = first.Diagnoses[2:] // only the server one
	h := start(t, 120, 40, first, nil)
	h.waitText("Diagnoses 1")
	h.snaps.set(handReport()) // the two client ones come first in the report
	h.refresh()
	lines := h.waitText("Diagnoses 3")
	unb, nag, srv := index(lines, "sends each request"), index(lines, "Nagle's algorithm"), index(lines, "sends each response")
	if !(nag < unb && unb < srv) {
		t.Errorf("not newest first:\n%s", strings.Join(lines, "\n"))
	}
}
