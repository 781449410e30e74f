package analyze

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestConnReportJSONNames: a connection's directions are written under
// their names, client_segments and server_segments, and under the
// deprecated client_writes and server_writes, with the same figures; either
// name reads back.
func TestConnReportJSONNames(t *testing.T) {
	cr := &ConnReport{
		ID:             7,
		Client:         "10.0.0.1:40000",
		Server:         "10.0.0.2:9042",
		ClientSegments: SegmentStats{Frames: 5005, Segments: 4283, FramesPerSegment: 1.17, BackToBack: 3911},
		ServerSegments: SegmentStats{Frames: 5005, Segments: 462, FramesPerSegment: 10.83, V5: &V5SegmentStats{Segments: 12}},
	}
	for _, v := range []any{cr, *cr, []*ConnReport{cr}} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var generic any
		if err := json.Unmarshal(b, &generic); err != nil {
			t.Fatal(err)
		}
		if list, ok := generic.([]any); ok {
			generic = list[0]
		}
		m := generic.(map[string]any)
		for _, pair := range [][2]string{{"client_segments", "client_writes"}, {"server_segments", "server_writes"}} {
			if m[pair[0]] == nil || !reflect.DeepEqual(m[pair[0]], m[pair[1]]) {
				t.Errorf("%T: %s = %v, %s = %v", v, pair[0], m[pair[0]], pair[1], m[pair[1]])
			}
		}
		if m["id"] != 7.0 || m["client"] != cr.Client {
			t.Errorf("%T: the other fields are missing: %s", v, b)
		}
	}

	for _, tc := range []struct {
		name, in string
		want     uint64 // client segments read
	}{
		{"new name", `{"id":1,"client_segments":{"segments":3},"server_segments":{"segments":4}}`, 3},
		{"old name", `{"id":1,"client_writes":{"segments":3},"server_writes":{"segments":4}}`, 3},
		{"both: the new one wins", `{"id":1,"client_writes":{"segments":9},"client_segments":{"segments":3},"server_segments":{"segments":4}}`, 3},
	} {
		var got ConnReport
		if err := json.Unmarshal([]byte(tc.in), &got); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got.ID != 1 || got.ClientSegments.Segments != tc.want || got.ServerSegments.Segments != 4 {
			t.Errorf("%s: read id %d, client segments %d, server segments %d", tc.name, got.ID, got.ClientSegments.Segments, got.ServerSegments.Segments)
		}
	}
	var bad ConnReport
	if err := json.Unmarshal([]byte(`{"id":"x"}`), &bad); err == nil {
		t.Error("a malformed connection read without error")
	}
}
