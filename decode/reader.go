package decode

import (
	"encoding/binary"
	"errors"
)

// maxTypeDepth bounds the nesting of [option] type descriptions
// (list<map<int, frozen<tuple<...>>>>); real schemas stay far below it.
const maxTypeDepth = 32

// errCut means the decoder ran off the end of a body prefix: the bytes exist
// on the wire but the caller did not buffer them. It never leaves the
// package: it turns into success once the essential fields are decoded, and
// into ErrTruncated before that.
var errCut = errors.New("cql: body prefix ends here")

// reader walks a body. Errors are sticky: after the first one every read
// returns zero values, so decoders read a whole structure and check once.
type reader struct {
	b   []byte
	off int
	// full is the length of the whole body on the wire. It is larger than
	// len(b) when b is only a prefix; a length that fits in full but not in
	// b cuts the prefix (errCut) instead of failing (ErrTruncated).
	full int
	err  error
	// tolerant is set once the message's essential fields are decoded: from
	// then on running off the prefix ends the decode successfully.
	tolerant bool
}

func newReader(h *Header, body []byte) reader {
	full := len(body)
	// A v1–v4 compressed body was decompressed by the caller and is whole;
	// h.Length then counts compressed bytes and says nothing about it.
	compressed := h.Flags&FlagCompression != 0 && h.Version < 5
	if !compressed && int(h.Length) > full {
		full = int(h.Length)
	}
	return reader{b: body, full: full}
}

func (r *reader) ok() bool { return r.err == nil }

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// commit marks the essential fields as decoded.
func (r *reader) commit() {
	if r.err == nil {
		r.tolerant = true
	}
}

// done is the decode's outcome.
func (r *reader) done() error {
	switch {
	case r.err == nil:
		return nil
	case r.err == errCut && r.tolerant:
		return nil
	case r.err == errCut:
		return ErrTruncated
	}
	return r.err
}

// left is how many bytes of the whole body remain, buffered or not.
func (r *reader) left() int { return r.full - r.off }

// need checks that n more bytes exist on the wire (not only in the prefix)
// without consuming them: used to reject counts before looping over them.
func (r *reader) need(n int64) bool {
	if r.err != nil {
		return false
	}
	if n > int64(r.left()) {
		r.err = ErrTruncated
		return false
	}
	return true
}

// take consumes n bytes. The returned slice aliases the body and has its
// capacity clipped so that nobody can append into the body.
func (r *reader) take(n int) []byte {
	if r.err == nil && uint(n) <= uint(len(r.b)-r.off) {
		s := r.b[r.off : r.off+n : r.off+n]
		r.off += n
		return s
	}
	r.short(n)
	return nil
}

// short records why n bytes cannot be taken.
func (r *reader) short(n int) {
	switch {
	case r.err != nil:
	case n < 0:
		r.err = ErrMalformed
	case n > r.full-r.off:
		r.err = ErrTruncated
	default:
		r.err = errCut
	}
}

func (r *reader) u8() uint8 {
	if r.err == nil && r.off < len(r.b) {
		v := r.b[r.off]
		r.off++
		return v
	}
	r.short(1)
	return 0
}

func (r *reader) u16() uint16 {
	if r.err == nil && r.off+2 <= len(r.b) {
		v := binary.BigEndian.Uint16(r.b[r.off:])
		r.off += 2
		return v
	}
	r.short(2)
	return 0
}

func (r *reader) i32() int32 {
	if r.err == nil && r.off+4 <= len(r.b) {
		v := binary.BigEndian.Uint32(r.b[r.off:])
		r.off += 4
		return int32(v)
	}
	r.short(4)
	return 0
}

func (r *reader) i64() int64 {
	if r.err == nil && r.off+8 <= len(r.b) {
		v := binary.BigEndian.Uint64(r.b[r.off:])
		r.off += 8
		return int64(v)
	}
	r.short(8)
	return 0
}

// str reads a [string].
func (r *reader) str() []byte { return r.take(int(r.u16())) }

// longStr reads a [long string]; a negative length is malformed.
func (r *reader) longStr() []byte { return r.take(int(r.i32())) }

// shortBytes reads a [short bytes].
func (r *reader) shortBytes() []byte { return r.take(int(r.u16())) }

// bytes reads a [bytes]; a negative length is null (nil).
func (r *reader) bytes() []byte {
	n := r.i32()
	if n < 0 {
		return nil
	}
	return r.take(int(n))
}

// value reads a bound value: [bytes] before v4, [value] from v4 on, where
// -1 is null, -2 is "not set" and anything below is invalid.
func (r *reader) value(v uint8) []byte {
	n := r.i32()
	if n < 0 {
		if v >= 4 && n < -2 {
			r.fail(ErrMalformed)
		}
		return nil
	}
	return r.take(int(n))
}

// skipValues reads past n bound values that nobody keeps, as n calls to
// value would. The values wholly in the buffered body are stepped over
// without value's checks and slicing (an EXECUTE carries a few to dozens);
// value takes over at the first that is not, so every outcome (cut,
// truncated, malformed) is the one it gives.
func (r *reader) skipValues(n int, v uint8) {
	if r.err != nil {
		return
	}
	b, off := r.b, r.off
	for ; n > 0 && len(b)-off >= 4; n-- {
		l := int(int32(binary.BigEndian.Uint32(b[off:])))
		if l < 0 {
			if v >= 4 && l < -2 {
				break // malformed: value says so
			}
			off += 4
			continue
		}
		if l > len(b)-off-4 {
			break
		}
		off += 4 + l
	}
	r.off = off
	for ; n > 0 && r.err == nil; n-- {
		r.value(v)
	}
}

func (r *reader) consistency() Consistency {
	c := Consistency(r.u16())
	if r.err == nil && !c.Valid() {
		r.err = ErrMalformed
	}
	return c
}

// stringList skips a [string list] and returns its length.
func (r *reader) stringList() int {
	n := int(r.u16())
	if !r.need(int64(n) * 2) {
		return 0
	}
	for i := 0; i < n && r.err == nil; i++ {
		r.str()
	}
	return n
}

// bytesMap skips a [bytes map] and returns its number of entries.
func (r *reader) bytesMap() int {
	n := int(r.u16())
	if !r.need(int64(n) * 6) {
		return 0
	}
	for i := 0; i < n && r.err == nil; i++ {
		r.str()
		r.bytes()
	}
	return n
}

// stringMap walks a [string map]; fn may be nil.
func (r *reader) stringMap(fn func(k, v []byte)) int {
	n := int(r.u16())
	if !r.need(int64(n) * 4) {
		return 0
	}
	for i := 0; i < n && r.err == nil; i++ {
		k := r.str()
		v := r.str()
		if r.err == nil && fn != nil {
			fn(k, v)
		}
	}
	return n
}

// multimap walks a [string multimap]; fn may be nil.
func (r *reader) multimap(fn func(k, v []byte)) int {
	n := int(r.u16())
	if !r.need(int64(n) * 4) {
		return 0
	}
	for i := 0; i < n && r.err == nil; i++ {
		k := r.str()
		m := int(r.u16())
		if !r.need(int64(m) * 2) {
			break
		}
		for j := 0; j < m && r.err == nil; j++ {
			v := r.str()
			if r.err == nil && fn != nil {
				fn(k, v)
			}
		}
	}
	return n
}

// inet reads an [inet]: address bytes and port.
func (r *reader) inet() ([]byte, int32) {
	addr := r.inetAddr()
	port := r.i32()
	return addr, port
}

// inetAddr reads an [inetaddr]: a length of 4 or 16, then the address.
func (r *reader) inetAddr() []byte {
	n := r.u8()
	if r.err == nil && n != 4 && n != 16 {
		r.err = ErrMalformed
		return nil
	}
	return r.take(int(n))
}

// skipType skips an [option] type description, recursing into collection,
// UDT and tuple element types no deeper than maxTypeDepth.
func (r *reader) skipType(depth int) {
	if depth >= maxTypeDepth {
		r.fail(ErrMalformed)
		return
	}
	id := r.u16()
	if r.err != nil {
		return
	}
	switch {
	case id == 0x0000: // custom: Java class name
		r.str()
	case id <= 0x0015: // native types (0x000A is v1/v2 text)
	case id == 0x0020, id == 0x0022: // list, set
		r.skipType(depth + 1)
	case id == 0x0021: // map
		r.skipType(depth + 1)
		r.skipType(depth + 1)
	case id == 0x0030: // UDT: keyspace, name, n × (field, type)
		r.str()
		r.str()
		n := int(r.u16())
		if !r.need(int64(n) * 4) {
			return
		}
		for i := 0; i < n && r.err == nil; i++ {
			r.str()
			r.skipType(depth + 1)
		}
	case id == 0x0031: // tuple: n × type
		n := int(r.u16())
		if !r.need(int64(n) * 2) {
			return
		}
		for i := 0; i < n && r.err == nil; i++ {
			r.skipType(depth + 1)
		}
	default:
		r.err = ErrMalformed
	}
}

// customPayload reads the [bytes map] custom payload prefix and returns its
// entry count and its raw bytes.
func (r *reader) customPayload() (int, []byte) {
	start := r.off
	n := r.bytesMap()
	if !r.ok() {
		return 0, nil
	}
	return n, r.b[start:r.off:r.off]
}

// ForEachMultimap walks a [string multimap] (a SUPPORTED body), calling fn
// for every value of every key; a key with an empty list is not reported.
// A nil fn only validates. Bytes after the multimap are ignored. The slices
// alias b.
func ForEachMultimap(b []byte, fn func(key, value []byte)) error {
	r := reader{b: b, full: len(b)}
	r.multimap(fn)
	return r.done()
}

// ForEachBytesMap walks a [bytes map] (a custom payload, see
// Request.CustomPayloadRaw and Response.CustomPayloadRaw), calling fn for
// every entry; a null value is nil. A nil fn only validates. Bytes after the
// map are ignored. The slices alias b.
func ForEachBytesMap(b []byte, fn func(key, value []byte)) error {
	r := reader{b: b, full: len(b)}
	n := int(r.u16())
	if !r.need(int64(n) * 6) {
		return r.done()
	}
	for i := 0; i < n && r.err == nil; i++ {
		k := r.str()
		v := r.bytes()
		if r.err == nil && fn != nil {
			fn(k, v)
		}
	}
	return r.done()
}

// ForEachStringMap walks a [string map] (a STARTUP body), calling fn for
// every entry; a nil fn only validates. Bytes after the map are ignored. The
// slices alias b.
func ForEachStringMap(b []byte, fn func(key, value []byte)) error {
	r := reader{b: b, full: len(b)}
	r.stringMap(fn)
	return r.done()
}

// Version-dependent layouts. DSE_V1 (0x41) is v4 with [int] flags; DSE_V2
// (0x42) adds the v5 keyspace, PREPARE flags and metadata ids.

// intFlags reports whether query flags are an [int] rather than a [byte].
func intFlags(v uint8) bool { return v >= 5 }

// v5Features reports whether PREPARE flags, result metadata ids and the
// keyspace of query parameters exist in version v.
func v5Features(v uint8) bool { return (v >= 5 && v < VersionDSE1) || v == VersionDSE2 }

func isDSE(v uint8) bool { return v == VersionDSE1 || v == VersionDSE2 }
