package decode

import (
	"reflect"
	"testing"
)

func TestTabletsRouting(t *testing.T) {
	ok, first, last, n := TabletsRouting(tabletsV1)
	if !ok || first != -100 || last != 200 || n != 2 {
		t.Fatalf("ok %v, (%d, %d], %d replicas", ok, first, last, n)
	}
	// tablets-routing-v2 appends [int 8][i64 tablet_version]: ignored.
	v2 := fixture(tabletsV1, "00 00 00 08", "00 00 00 00 00 00 00 2a")
	if ok, first, last, n := TabletsRouting(v2); !ok || first != -100 || last != 200 || n != 2 {
		t.Errorf("v2: ok %v, (%d, %d], %d", ok, first, last, n)
	}
	// No replicas at all is well-formed.
	empty := fixture("00 00 00 08 80 00 00 00 00 00 00 00", "00 00 00 08 7f ff ff ff ff ff ff ff", "00 00 00 04 00 00 00 00")
	if ok, first, last, n := TabletsRouting(empty); !ok || first != -1<<63 || last != 1<<63-1 || n != 0 {
		t.Errorf("empty: ok %v, (%d, %d], %d", ok, first, last, n)
	}
	for n := range len(tabletsV1) {
		if ok, _, _, _ := TabletsRouting(tabletsV1[:n]); ok {
			t.Errorf("cut at %d: ok", n)
		}
	}
	bad := map[string][]byte{
		"token of 4 bytes": fixture("00 00 00 04 00 00 00 01", tabletsV1[12:]),
		"null list":        fixture(tabletsV1[:24], "ff ff ff ff"),
		"negative count":   fixture(tabletsV1[:24], "00 00 00 04 ff ff ff ff"),
		"count over bytes": fixture(tabletsV1[:24], "00 00 00 04 7f ff ff ff"),
		"null replica":     fixture(tabletsV1[:24], "00 00 00 08 00 00 00 01 ff ff ff ff"),
		"uuid of 15 bytes": fixture(tabletsV1[:24], "00 00 00 20 00 00 00 01 00 00 00 1c 00 00 00 0f", hostID1, "00 00 00 04 00 00 00 03"),
		"shard of 8 bytes": fixture(tabletsV1[:24], "00 00 00 24 00 00 00 01 00 00 00 20 00 00 00 10", hostID1, "00 00 00 08 00 00 00 00 00 00 00 03"),
		"negative shard":   fixture(tabletsV1[:24], "00 00 00 24 00 00 00 01 00 00 00 1c 00 00 00 10", hostID1, "00 00 00 04 ff ff ff ff"),
	}
	for name, b := range bad {
		if ok, _, _, _ := TabletsRouting(b); ok {
			t.Errorf("%s: ok", name)
		}
	}
}

func TestParseScyllaSupported(t *testing.T) {
	h, body := responseFixture(t, "SUPPORTED Scylla")
	var r Response
	if err := DecodeResponse(&h, body, &r); err != nil {
		t.Fatal(err)
	}
	s := ScyllaInfo{Shard: 9, TabletsRoutingV1: false, HostID: []byte("stale")}
	if err := ParseScyllaSupported(r.Supported, &s); err != nil {
		t.Fatal(err)
	}
	want := ScyllaInfo{Shard: 1, NrShards: 2, ShardingAlgorithm: []byte("biased-token-round-robin"), ShardingIgnoreMSB: 12,
		ShardAwarePort: 19042, ShardAwarePortSSL: 19142, Partitioner: []byte("org.apache.cassandra.dht.Murmur3Partitioner"),
		HostID: []byte("6b8b4567-327b-4d0c-9f8a-1e2d3c4b5a69"), RateLimitErrorCode: 61440, LWTMask: ScyllaLWTBit,
		TabletsRoutingV1: true, UseMetadataID: true}
	if diff := fieldDiff(s, want); diff != "" {
		t.Error(diff)
	}
	checkWithin(t, body, &s)
	// What the analyzer does with it: the advertised code drives the ERROR
	// decode.
	h, body = responseFixture(t, "ERROR Scylla rate limit at the usual code")
	resp := Response{RateLimitCode: s.RateLimitErrorCode}
	if err := DecodeResponse(&h, body, &resp); err != nil || !resp.Error.RateLimit {
		t.Errorf("rate limit with the advertised code: %v %+v", err, resp.Error)
	}

	// Cassandra: no Scylla keys, protocol versions as a mask.
	h, body = responseFixture(t, "SUPPORTED, real (elastic-beats cassandra_mixed_frame.pcap)")
	if err := DecodeResponse(&h, body, &r); err != nil {
		t.Fatal(err)
	}
	if err := ParseScyllaSupported(r.Supported, &s); err != nil {
		t.Fatal(err)
	}
	absent := ScyllaInfo{Shard: -1, NrShards: -1, ShardingIgnoreMSB: -1, ShardAwarePort: -1, ShardAwarePortSSL: -1}
	if diff := fieldDiff(s, absent); diff != "" {
		t.Error(diff)
	}
	versions := fixture("00 01", str("PROTOCOL_VERSIONS"), "00 04", str("3/v3"), str("4/v4"), str("5/v5-beta"), str("6/v6-beta"))
	if err := ParseScyllaSupported(versions, &s); err != nil || s.ProtocolVersions != 0x78 || s.BetaVersions != 0x60 {
		t.Errorf("versions %#x, beta %#x, %v", s.ProtocolVersions, s.BetaVersions, err)
	}

	// Numbers that do not parse, or do not fit, leave the field absent.
	odd := fixture("00 05",
		str("SCYLLA_SHARD"), "00 01", str("-1"),
		str("SCYLLA_NR_SHARDS"), "00 01", str("1x2"),
		str("SCYLLA_SHARD_AWARE_PORT"), "00 01", str("70000"),
		str("SCYLLA_RATE_LIMIT_ERROR"), "00 01", str("ERROR_COD=61440"),
		str("SCYLLA_LWT_ADD_METADATA_MARK"), "00 01", str("LWT_OPTIMIZATION_META_BIT_MASK=99999999999"),
	)
	if err := ParseScyllaSupported(odd, &s); err != nil {
		t.Fatal(err)
	}
	if diff := fieldDiff(s, absent); diff != "" {
		t.Error(diff)
	}
	// A multimap that does not walk leaves nothing behind.
	for n := range len(r.Supported) {
		s = ScyllaInfo{UseMetadataID: true}
		if err := ParseScyllaSupported(r.Supported[:n], &s); err != ErrTruncated || !reflect.DeepEqual(s, absent) {
			t.Errorf("cut at %d: %v %+v", n, err, s)
		}
	}
}
