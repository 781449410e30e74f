package decode

import (
	"bytes"
	"testing"
)

func requestFixture(t testing.TB, name string) (Header, []byte) {
	for _, tc := range requestCases {
		if tc.name == name {
			return splitFrame(t, tc.frame)
		}
	}
	t.Fatalf("no request fixture %q", name)
	return Header{}, nil
}

func responseFixture(t testing.TB, name string) (Header, []byte) {
	for _, tc := range responseCases {
		if tc.name == name {
			return splitFrame(t, tc.frame)
		}
	}
	t.Fatalf("no response fixture %q", name)
	return Header{}, nil
}

const (
	fxQuery    = "QUERY v4 with tracing flag, real (elastic-beats cassandra_trace_err.pcap)"
	fxExecute  = "EXECUTE v4 with values"
	fxBatch    = "BATCH v4 mixed statements"
	fxRows     = "RESULT Rows, real (elastic-beats cassandra_select.pcap)"
	fxRowsUDT  = "RESULT Rows with paging state, per-column specs, map/tuple/UDT types"
	fxPrepared = "RESULT Prepared v5 with result metadata id and result columns"
	fxError    = "ERROR Config_error, real (elastic-beats cassandra_trace_err.pcap)"
)

// TestDecodeNoAllocs: a reused Request or Response decodes without
// allocating once its slices have grown.
func TestDecodeNoAllocs(t *testing.T) {
	for _, name := range []string{fxQuery, fxExecute, fxBatch,
		"QUERY v4 named values, one not set", "STARTUP v4, keys in any case", "PREPARE v5 with keyspace"} {
		h, body := requestFixture(t, name)
		for _, keep := range []bool{false, true} {
			r := Request{KeepValues: keep}
			if err := DecodeRequest(&h, body, &r); err != nil {
				t.Fatal(name, err)
			}
			if a := testing.AllocsPerRun(200, func() { _ = DecodeRequest(&h, body, &r) }); a != 0 {
				t.Errorf("%s (keep %v): %v allocs", name, keep, a)
			}
		}
	}
	for _, name := range []string{fxRows, fxRowsUDT, fxPrepared, fxError,
		"RESULT Prepared v4 with Scylla's metadata id extension", "EVENT SCHEMA_CHANGE",
		"tracing id, warnings and custom payload, in that order", "SUPPORTED, real (elastic-beats cassandra_mixed_frame.pcap)"} {
		h, body := responseFixture(t, name)
		var r Response
		if a := testing.AllocsPerRun(200, func() {
			if err := DecodeResponse(&h, body, &r); err != nil {
				t.Fatal(name, err)
			}
		}); a != 0 {
			t.Errorf("%s: %v allocs", name, a)
		}
	}
	// Errors allocate nothing either.
	h, body := responseFixture(t, "type nesting deeper than 32")
	var r Response
	if a := testing.AllocsPerRun(200, func() { _ = DecodeResponse(&h, body, &r) }); a != 0 {
		t.Errorf("malformed: %v allocs", a)
	}
}

func benchRequest(b *testing.B, name string, keep bool) {
	h, body := requestFixture(b, name)
	r := Request{KeepValues: keep}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := DecodeRequest(&h, body, &r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeRequestQuery(b *testing.B)   { benchRequest(b, fxQuery, false) }
func BenchmarkDecodeRequestExecute(b *testing.B) { benchRequest(b, fxExecute, true) }
func BenchmarkDecodeRequestBatch(b *testing.B)   { benchRequest(b, fxBatch, true) }

func BenchmarkDecodeResponseRows(b *testing.B) {
	h, body := responseFixture(b, fxRows)
	var r Response
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := DecodeResponse(&h, body, &r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeResponsePrepared(b *testing.B) {
	h, body := responseFixture(b, fxPrepared)
	var r Response
	b.ReportAllocs()
	for b.Loop() {
		if err := DecodeResponse(&h, body, &r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecompressLZ4(b *testing.B) {
	// A 16 KiB Rows-like body: repetitive column names and values.
	data := bytes.Repeat([]byte("\x00\x00\x00\x08cqlsniff\x00\x00\x00\x04\x00\x00\x00\x2a"), 16<<10/20)
	src := lz4Body(b, data)
	dst := make([]byte, 0, len(data))
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := DecompressLZ4(dst, src, 1<<20); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecompressSnappy(b *testing.B) {
	data := bytes.Repeat([]byte("\x00\x00\x00\x08cqlsniff\x00\x00\x00\x04\x00\x00\x00\x2a"), 16<<10/20)
	src := snappyEncode(data)
	dst := make([]byte, 0, len(data))
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := DecompressSnappy(dst, src, 1<<20); err != nil {
			b.Fatal(err)
		}
	}
}
