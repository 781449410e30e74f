package analyze

import "encoding/json"

// A connection's two directions were named client_writes and server_writes
// in the JSON report, although what they count is TCP segments, not write
// calls (the kernel's count of those is client_syscalls.sends). Their names
// are now client_segments and server_segments. The old names stay in the
// output, with the same figures, so that existing consumers keep working;
// they are deprecated (README.md, docs/json.md) and will be dropped in a
// later release.

// connReportFields is ConnReport without its JSON methods.
type connReportFields ConnReport

// connReportJSON is a connection's JSON form: every field of ConnReport
// (ClientSegments and ServerSegments among them, under their deprecated
// keys client_writes and server_writes) and the same two directions again
// under their new keys, last.
type connReportJSON struct {
	*connReportFields
	ClientSegs *SegmentStats `json:"client_segments"`
	ServerSegs *SegmentStats `json:"server_segments"`
}

// MarshalJSON writes the connection with both names of its directions.
func (r ConnReport) MarshalJSON() ([]byte, error) {
	return json.Marshal(connReportJSON{(*connReportFields)(&r), &r.ClientSegments, &r.ServerSegments})
}

// UnmarshalJSON reads a connection written under either name; the new one
// wins when both are present.
func (r *ConnReport) UnmarshalJSON(b []byte) error {
	aux := connReportJSON{connReportFields: (*connReportFields)(r)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	if aux.ClientSegs != nil {
		r.ClientSegments = *aux.ClientSegs
	}
	if aux.ServerSegs != nil {
		r.ServerSegments = *aux.ServerSegs
	}
	return nil
}
