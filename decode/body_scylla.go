package decode

// ScyllaInfo is what a SUPPORTED body says about a ScyllaDB node and the
// protocol extensions it offers (scylladb docs/dev/protocol-extensions.md),
// plus the PROTOCOL_VERSIONS list Cassandra sends. It is the only place a
// passive observer learns shard numbers and extension parameters. Slices
// alias the multimap given to ParseScyllaSupported.
type ScyllaInfo struct {
	// SCYLLA_SHARD and SCYLLA_NR_SHARDS: the shard serving the connection
	// and the shards of the node; -1 when absent.
	Shard, NrShards int
	// SCYLLA_SHARDING_ALGORITHM ("biased-token-round-robin") and its
	// SCYLLA_SHARDING_IGNORE_MSB parameter (-1 when absent).
	ShardingAlgorithm []byte
	ShardingIgnoreMSB int
	// SCYLLA_SHARD_AWARE_PORT and SCYLLA_SHARD_AWARE_PORT_SSL; -1 when absent.
	ShardAwarePort, ShardAwarePortSSL int
	// SCYLLA_PARTITIONER and SCYLLA_HOST_ID (informational).
	Partitioner, HostID []byte
	// RateLimitErrorCode is the ERROR_CODE parameter of
	// SCYLLA_RATE_LIMIT_ERROR, 0 when absent: either way it can be given to
	// Response.RateLimitCode as is.
	RateLimitErrorCode ErrorCode
	// LWTMask is the LWT_OPTIMIZATION_META_BIT_MASK parameter of
	// SCYLLA_LWT_ADD_METADATA_MARK (ScyllaLWTBit today), 0 when absent.
	LWTMask uint32
	// TabletsRoutingV1 and UseMetadataID report the TABLETS_ROUTING_V1 and
	// SCYLLA_USE_METADATA_ID keys. Offered is not negotiated: the client
	// enables an extension by repeating its key in STARTUP.
	TabletsRoutingV1 bool
	UseMetadataID    bool
	// ProtocolVersions has bit v set for each version v below 32 listed in
	// PROTOCOL_VERSIONS ("4/v4", "5/v5-beta"); BetaVersions those whose
	// entry says beta.
	ProtocolVersions uint32
	BetaVersions     uint32
}

// ParseScyllaSupported fills s from a SUPPORTED [string multimap]
// (Response.Supported). Keys it does not know are skipped, and so is a
// number that does not parse or is out of range: its field keeps its
// absent value. A multimap that does not walk is ErrTruncated or
// ErrMalformed, and then s holds only absent values. It allocates nothing.
func ParseScyllaSupported(multimap []byte, s *ScyllaInfo) error {
	*s = ScyllaInfo{Shard: -1, NrShards: -1, ShardingIgnoreMSB: -1, ShardAwarePort: -1, ShardAwarePortSSL: -1}
	r := reader{b: multimap, full: len(multimap)}
	n := int(r.u16())
	if !r.need(int64(n) * 4) {
		return r.done()
	}
	for i := 0; i < n && r.ok(); i++ {
		k := r.str()
		m := int(r.u16())
		if !r.need(int64(m) * 2) {
			break
		}
		// Parameter-less keys come with one empty value, or none at all.
		switch string(k) {
		case "TABLETS_ROUTING_V1":
			s.TabletsRoutingV1 = true
		case "SCYLLA_USE_METADATA_ID":
			s.UseMetadataID = true
		}
		for j := 0; j < m && r.ok(); j++ {
			if v := r.str(); r.ok() {
				s.value(k, v)
			}
		}
	}
	if err := r.done(); err != nil {
		*s = ScyllaInfo{Shard: -1, NrShards: -1, ShardingIgnoreMSB: -1, ShardAwarePort: -1, ShardAwarePortSSL: -1}
		return err
	}
	return nil
}

// value records one value of key k.
func (s *ScyllaInfo) value(k, v []byte) {
	switch string(k) {
	case "SCYLLA_SHARD":
		s.Shard = decimalOr(v, 0, 1<<31-1, s.Shard)
	case "SCYLLA_NR_SHARDS":
		s.NrShards = decimalOr(v, 1, 1<<31-1, s.NrShards)
	case "SCYLLA_SHARDING_ALGORITHM":
		s.ShardingAlgorithm = v
	case "SCYLLA_SHARDING_IGNORE_MSB":
		s.ShardingIgnoreMSB = decimalOr(v, 0, 63, s.ShardingIgnoreMSB)
	case "SCYLLA_SHARD_AWARE_PORT":
		s.ShardAwarePort = decimalOr(v, 0, 65535, s.ShardAwarePort)
	case "SCYLLA_SHARD_AWARE_PORT_SSL":
		s.ShardAwarePortSSL = decimalOr(v, 0, 65535, s.ShardAwarePortSSL)
	case "SCYLLA_PARTITIONER":
		s.Partitioner = v
	case "SCYLLA_HOST_ID":
		s.HostID = v
	case "SCYLLA_RATE_LIMIT_ERROR":
		if p, ok := param(v, "ERROR_CODE"); ok {
			s.RateLimitErrorCode = ErrorCode(decimalOr(p, -1<<31, 1<<31-1, int(s.RateLimitErrorCode)))
		}
	case "SCYLLA_LWT_ADD_METADATA_MARK":
		if p, ok := param(v, "LWT_OPTIMIZATION_META_BIT_MASK"); ok {
			s.LWTMask = uint32(decimalOr(p, 0, 1<<32-1, int(s.LWTMask)))
		}
	case "PROTOCOL_VERSIONS":
		// "N/vN", beta versions "N/vN-beta".
		end := 0
		for end < len(v) && v[end] != '/' {
			end++
		}
		if ver := decimalOr(v[:end], 0, 31, -1); ver >= 0 {
			s.ProtocolVersions |= 1 << ver
			if contains(v[end:], "beta") {
				s.BetaVersions |= 1 << ver
			}
		}
	}
}

// param returns the VALUE of a "NAME=VALUE" extension parameter.
func param(v []byte, name string) ([]byte, bool) {
	if len(v) <= len(name) || v[len(name)] != '=' || string(v[:len(name)]) != name {
		return nil, false
	}
	return v[len(name)+1:], true
}

// decimalOr parses an optionally signed decimal ASCII integer within
// [lo, hi], returning def for anything else.
func decimalOr(b []byte, lo, hi int64, def int) int {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return def
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return def
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	if n < lo || n > hi {
		return def
	}
	return int(n)
}

func contains(b []byte, sub string) bool {
	for i := 0; i+len(sub) <= len(b); i++ {
		if string(b[i:i+len(sub)]) == sub {
			return true
		}
	}
	return false
}

// TabletsRouting decodes the [bytes] value of Scylla's tablets-routing-v1
// custom payload entry, a serialized tuple<bigint, bigint,
// list<tuple<uuid, int>>>: the tablet's token range (firstToken, lastToken]
// and its replicas, each a host id and a shard. ok is false unless every
// element is present with its fixed length and no shard is negative. Bytes
// after the tuple (the tablet version that tablets-routing-v2 appends) are
// ignored. It allocates nothing; the walk is bounded by len(payload).
func TabletsRouting(payload []byte) (ok bool, firstToken, lastToken int64, replicas int) {
	r := reader{b: payload, full: len(payload)}
	if r.i32() != 8 {
		return false, 0, 0, 0
	}
	first := r.i64()
	if r.i32() != 8 {
		return false, 0, 0, 0
	}
	last := r.i64()
	list := r.bytes() // nil when null (or cut)
	if !r.ok() || list == nil {
		return false, 0, 0, 0
	}
	l := reader{b: list, full: len(list)}
	n := l.i32()
	// A replica is at least its own length, a uuid and an int: 4+4+16+4+4.
	if !l.ok() || n < 0 || !l.need(int64(n)*32) {
		return false, 0, 0, 0
	}
	for i := int32(0); i < n; i++ {
		elem := l.bytes()
		if !l.ok() || elem == nil {
			return false, 0, 0, 0
		}
		e := reader{b: elem, full: len(elem)}
		if e.i32() != 16 {
			return false, 0, 0, 0
		}
		e.take(16) // host id
		if e.i32() != 4 {
			return false, 0, 0, 0
		}
		if shard := e.i32(); !e.ok() || shard < 0 {
			return false, 0, 0, 0
		}
	}
	return true, first, last, int(n)
}
