package synth

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// The checker's view of CQL messages: each request and response body read
// field by field (cql-wire.md), and each response held to its request.

func checkRequest(cfg Config, c *connCheck, op uint8, body []byte) error {
	r := &rd{b: body}
	switch op {
	case opOptions:
	case opStartup:
		m := r.stringMap()
		if m["CQL_VERSION"] == "" || m["DRIVER_NAME"] != "synth" || m["COMPRESSION"] != cfg.Compression {
			return fmt.Errorf("STARTUP %v", m)
		}
		// v4: the server compresses bodies from its answer to STARTUP on
		// (§6.1). v5: the client frames everything after STARTUP (§8.1).
		c.comp[srv] = m["COMPRESSION"] != "" && cfg.Protocol == 4
		c.dir[cli].framed = cfg.Protocol == 5
	case opPrepare:
		q := r.longString()
		if !strings.Contains(q, "?") {
			return fmt.Errorf("PREPARE %q", q)
		}
		if cfg.Protocol == 5 {
			if f := r.int(); f != 0 {
				return fmt.Errorf("v5 PREPARE flags %#x", f)
			}
		}
	case opQuery:
		q := r.longString()
		if strings.Contains(q, "?") || !(strings.HasPrefix(q, "SELECT ") ||
			strings.HasPrefix(q, "INSERT ") || strings.HasPrefix(q, "UPDATE ")) {
			return fmt.Errorf("QUERY %q", q)
		}
		if n := r.queryParams(cfg.Protocol); n != 0 {
			return fmt.Errorf("QUERY with %d values", n)
		}
	case opExecute:
		var id [16]byte
		if copy(id[:], r.shortBytes()) != 16 {
			return errors.New("prepared id not 16 bytes")
		}
		want, ok := c.prepared[id]
		if !ok {
			return fmt.Errorf("EXECUTE of unknown id %x", id)
		}
		if cfg.Protocol == 5 {
			if rid := r.shortBytes(); !bytes.Equal(rid, c.resultIDs[id]) {
				return fmt.Errorf("EXECUTE result_metadata_id %x, Prepared said %x", rid, c.resultIDs[id])
			}
		}
		if n := r.queryParams(cfg.Protocol); n != want {
			return fmt.Errorf("EXECUTE with %d values, statement has %d", n, want)
		}
	default:
		return errors.New("unexpected request opcode")
	}
	return r.done()
}

func checkResponse(cfg Config, c *connCheck, req, op uint8, body []byte) error {
	r := &rd{b: body}
	switch {
	case req == opOptions && op == opSupported:
		m := r.stringMultimap()
		if len(m["COMPRESSION"]) == 0 || len(m["CQL_VERSION"]) == 0 {
			return fmt.Errorf("SUPPORTED %v", m)
		}
	case req == opStartup && op == opReady:
		c.comp[cli] = c.comp[srv]
		c.dir[srv].framed = cfg.Protocol == 5
	case req == opPrepare && op == opResult:
		if k := r.int(); k != resultPrepared {
			return fmt.Errorf("PREPARE answered by kind %d", k)
		}
		var id [16]byte
		if copy(id[:], r.shortBytes()) != 16 {
			return errors.New("prepared id not 16 bytes")
		}
		if cfg.Protocol == 5 {
			rid := r.shortBytes()
			if len(rid) != 16 {
				return fmt.Errorf("result_metadata_id %x", rid)
			}
			c.resultIDs[id] = bytes.Clone(rid)
		}
		c.prepared[id] = r.metadata(true)
		r.metadata(false)
	case (req == opQuery || req == opExecute) && op == opResult:
		switch k := r.int(); k {
		case resultVoid:
		case resultRows:
			cols := r.metadata(false)
			rows := r.int()
			if rows < 0 {
				return fmt.Errorf("rows_count %d", rows)
			}
			for range rows * int32(cols) {
				r.bytes()
			}
		default:
			return fmt.Errorf("result kind %d", k)
		}
	case (req == opQuery || req == opExecute) && op == opError:
		switch code := r.int(); code {
		case errReadTimeout:
			r.string()
			r.consistency()
			r.int()
			r.int()
			r.byte()
		case errWriteTimeout:
			r.string()
			r.consistency()
			r.int()
			r.int()
			if wt := r.string(); wt != "SIMPLE" && wt != "COUNTER" {
				return fmt.Errorf("write_type %q", wt)
			}
		default:
			return fmt.Errorf("error code %#x", code)
		}
	default:
		return errors.New("response does not answer its request")
	}
	return r.done()
}

// rd reads CQL primitives (cql-wire.md §5), remembering the first error.
type rd struct {
	b   []byte
	off int
	err error
}

func (r *rd) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b)-r.off < n {
		r.err = fmt.Errorf("need %d bytes at %d of %d", n, r.off, len(r.b))
		return nil
	}
	v := r.b[r.off : r.off+n]
	r.off += n
	return v
}

func (r *rd) byte() byte {
	if v := r.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *rd) short() uint16 {
	if v := r.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (r *rd) int() int32 {
	if v := r.take(4); v != nil {
		return int32(binary.BigEndian.Uint32(v))
	}
	return 0
}

func (r *rd) string() string     { return string(r.take(int(r.short()))) }
func (r *rd) longString() string { return string(r.take(int(r.int()))) }
func (r *rd) shortBytes() []byte { return r.take(int(r.short())) }

func (r *rd) bytes() []byte {
	n := r.int()
	if n < 0 {
		return nil
	}
	return r.take(int(n))
}

func (r *rd) consistency() {
	if c := r.short(); c > clLocalOne && r.err == nil {
		r.err = fmt.Errorf("consistency %#x", c)
	}
}

func (r *rd) stringMap() map[string]string {
	m := map[string]string{}
	for range r.short() {
		k := r.string()
		m[k] = r.string()
	}
	return m
}

func (r *rd) stringMultimap() map[string][]string {
	m := map[string][]string{}
	for range r.short() {
		k := r.string()
		for range r.short() {
			m[k] = append(m[k], r.string())
		}
	}
	return m
}

// queryParams reads v4 or v5 query parameters (§6.4) and returns the value
// count.
func (r *rd) queryParams(proto int) int {
	r.consistency()
	var flags int32
	if proto == 5 {
		flags = r.int()
	} else {
		flags = int32(r.byte())
	}
	if flags&^0x7F != 0 && r.err == nil {
		r.err = fmt.Errorf("query flags %#x", flags)
	}
	n := 0
	if flags&qfValues != 0 {
		n = int(r.short())
		for range n {
			if flags&0x40 != 0 {
				r.string()
			}
			if v := r.int(); v >= 0 {
				r.take(int(v))
			} else if v < -2 && r.err == nil {
				r.err = fmt.Errorf("value length %d", v)
			}
		}
	}
	if flags&qfPageSize != 0 {
		if p := r.int(); p <= 0 && r.err == nil {
			r.err = fmt.Errorf("page size %d", p)
		}
	}
	if flags&0x08 != 0 {
		r.bytes()
	}
	if flags&0x10 != 0 {
		r.consistency()
	}
	if flags&qfDefaultTS != 0 {
		r.take(8)
	}
	return n
}

// metadata reads prepared metadata (prepared = true, with pk indexes) or
// rows metadata (§6.9.1, §6.9.4) and returns columns_count.
func (r *rd) metadata(prepared bool) int {
	flags := r.int()
	cols := r.int()
	if (flags&^(mfGlobalTables|mfNoMetadata) != 0 || cols < 0) && r.err == nil {
		r.err = fmt.Errorf("metadata flags %#x, %d columns", flags, cols)
	}
	if prepared {
		for range r.int() {
			r.short()
		}
	}
	if flags&mfNoMetadata != 0 {
		return int(cols)
	}
	if flags&mfGlobalTables != 0 {
		r.string()
		r.string()
	}
	for range cols {
		if flags&mfGlobalTables == 0 {
			r.string()
			r.string()
		}
		if r.string() == "" && r.err == nil {
			r.err = errors.New("empty column name")
		}
		r.option(0)
	}
	return int(cols)
}

func (r *rd) option(depth int) {
	id := r.short()
	switch {
	case depth > 8:
		r.err = errors.New("type nesting too deep")
	case id == 0:
		r.string()
	case id >= 0x01 && id <= 0x14 && id != 0x0A:
	case id == 0x20 || id == 0x22:
		r.option(depth + 1)
	case id == 0x21:
		r.option(depth + 1)
		r.option(depth + 1)
	default:
		if r.err == nil {
			r.err = fmt.Errorf("type id %#x", id)
		}
	}
}

func (r *rd) done() error {
	if r.err == nil && r.off != len(r.b) {
		r.err = fmt.Errorf("%d trailing bytes", len(r.b)-r.off)
	}
	return r.err
}
