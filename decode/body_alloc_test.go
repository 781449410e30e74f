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
		"QUERY v4 named values, one not set", "STARTUP v4, keys in any case", "PREPARE v5 with keyspace",
		"CREDENTIALS v1: counted, never exposed", "QUERY DSE_V2 continuous paging with keyspace and next pages",
		"REVISE_REQUEST DSE_V2: more pages", "BATCH v5 prepared children with values, timestamp and now_in_seconds",
		"QUERY v4 with a tablets-routing custom payload, kept raw"} {
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
		"tracing id, warnings and custom payload, in that order", "SUPPORTED, real (elastic-beats cassandra_mixed_frame.pcap)",
		"ERROR Write_timeout v5 CAS with contentions", "ERROR Read_failure v5: reason map with more entries than kept",
		"ERROR Write_failure v5 endpoint of 5 bytes", "ERROR Function_failure", "ERROR Scylla rate limit at the usual code",
		"ERROR Unavailable cut after the consistency", "EVENT CLIENT_ROUTES_CHANGE (Scylla)", "EVENT TOPOLOGY_CHANGE IPv6",
		"EVENT SCHEMA_CHANGE AGGREGATE with argument types", "AUTH_SUCCESS token: length only",
		"RESULT Prepared v4 Scylla LWT mark with metadata id", "RESULT Void with a tablets-routing-v1 custom payload"} {
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
	// A rate-limit code set by the caller costs nothing either.
	h, body := responseFixture(t, "ERROR Scylla rate limit at an advertised code")
	r := Response{RateLimitCode: 0xF001}
	if a := testing.AllocsPerRun(200, func() { _ = DecodeResponse(&h, body, &r) }); a != 0 || !r.Error.RateLimit {
		t.Errorf("advertised rate limit: %v allocs, %+v", a, r.Error)
	}
	// Errors allocate nothing either.
	h, body = responseFixture(t, "type nesting deeper than 32")
	r = Response{}
	if a := testing.AllocsPerRun(200, func() { _ = DecodeResponse(&h, body, &r) }); a != 0 {
		t.Errorf("malformed: %v allocs", a)
	}
}

// TestHelpersNoAllocs: the custom payload walk, the tablet routing decode
// and the SUPPORTED parse allocate nothing.
func TestHelpersNoAllocs(t *testing.T) {
	h, body := responseFixture(t, "RESULT Void with a tablets-routing-v1 custom payload")
	var r Response
	if err := DecodeResponse(&h, body, &r); err != nil {
		t.Fatal(err)
	}
	var replicas int
	walk := func(k, v []byte) {
		if string(k) == "tablets-routing-v1" {
			_, _, _, replicas = TabletsRouting(v)
		}
	}
	if a := testing.AllocsPerRun(200, func() { _ = ForEachBytesMap(r.CustomPayloadRaw, walk) }); a != 0 || replicas != 2 {
		t.Errorf("custom payload walk: %v allocs, %d replicas", a, replicas)
	}
	h, body = responseFixture(t, "SUPPORTED Scylla")
	if err := DecodeResponse(&h, body, &r); err != nil {
		t.Fatal(err)
	}
	var s ScyllaInfo
	if a := testing.AllocsPerRun(200, func() { _ = ParseScyllaSupported(r.Supported, &s) }); a != 0 || s.NrShards != 2 {
		t.Errorf("ParseScyllaSupported: %v allocs, %+v", a, s)
	}
	if a := testing.AllocsPerRun(200, func() { _ = ParseScyllaSupported(r.Supported[:100], &s) }); a != 0 {
		t.Errorf("ParseScyllaSupported on a cut multimap: %v allocs", a)
	}
}

func BenchmarkParseScyllaSupported(b *testing.B) {
	h, body := responseFixture(b, "SUPPORTED Scylla")
	var r Response
	if err := DecodeResponse(&h, body, &r); err != nil {
		b.Fatal(err)
	}
	var s ScyllaInfo
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseScyllaSupported(r.Supported, &s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeResponseError(b *testing.B) {
	h, body := responseFixture(b, "ERROR Read_failure v5: reason map with more entries than kept")
	var r Response
	b.ReportAllocs()
	for b.Loop() {
		if err := DecodeResponse(&h, body, &r); err != nil {
			b.Fatal(err)
		}
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
