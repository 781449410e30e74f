package decode

import "encoding/binary"

// HeaderLen is the size of a v3+ envelope header; v1/v2 headers are one byte shorter.
const HeaderLen = 9

// MaxBodyLen is the protocol's cap on one envelope body (all specs: 256 MB).
const MaxBodyLen = 256 << 20

// Header is a decoded envelope header. It is a plain value: decoding it
// allocates nothing and keeps no reference to the input.
type Header struct {
	Version  uint8 // protocol version, direction bit removed
	Response bool  // direction bit: set on server → client envelopes
	Flags    Flags
	Stream   int16
	Opcode   Opcode
	Length   uint32 // body bytes that follow the header
	Size     uint8  // header bytes: 9, or 8 for v1/v2
}

// Frame length reports the whole envelope size, header included.
func (h *Header) FrameLen() int { return int(h.Size) + int(h.Length) }

// ParseHeader decodes the envelope header at the start of b into h.
// It returns the header size (8 or 9) on success, 0 when b is too short to
// tell, and -1 when the bytes cannot be a header of any known version.
// It checks only what the header layout itself requires; Plausible applies
// the stronger checks used to find frame boundaries mid-stream.
func ParseHeader(b []byte, h *Header) int {
	if len(b) < 1 {
		return 0
	}
	v := b[0] & 0x7F
	if !KnownVersion(v) {
		return -1
	}
	if v <= 2 {
		if len(b) < 8 {
			return 0
		}
		*h = Header{
			Version:  v,
			Response: b[0]&0x80 != 0,
			Flags:    Flags(b[1]),
			Stream:   int16(int8(b[2])),
			Opcode:   Opcode(b[3]),
			Length:   binary.BigEndian.Uint32(b[4:8]),
			Size:     8,
		}
	} else {
		if len(b) < HeaderLen {
			return 0
		}
		*h = Header{
			Version:  v,
			Response: b[0]&0x80 != 0,
			Flags:    Flags(b[1]),
			Stream:   int16(binary.BigEndian.Uint16(b[2:4])),
			Opcode:   Opcode(b[4]),
			Length:   binary.BigEndian.Uint32(b[5:9]),
			Size:     HeaderLen,
		}
	}
	if h.Length > MaxBodyLen {
		return -1
	}
	return int(h.Size)
}

// Plausible applies the sanity checks of a passive decoder (cql-wire.md §2.4)
// to a parsed header: version, direction, flags allowed in that version,
// opcode allowed in that direction, stream range, and per-opcode length
// bounds. Random bytes pass with a probability well under 1e-6; callers that
// hunt for a boundary also check the next header (chain check).
func (h *Header) Plausible(response bool) bool {
	if h.Response != response {
		return false
	}
	f := uint8(h.Flags)
	switch {
	case h.Version <= 2:
		if f&^0x03 != 0 {
			return false
		}
	case h.Version == 3:
		if f&^0x03 != 0 {
			return false
		}
	case h.Version == 4:
		if f&^0x0F != 0 {
			return false
		}
	default:
		if f&^0x1F != 0 {
			return false
		}
	}
	if response {
		if !h.Opcode.IsResponse(h.Version) {
			return false
		}
		if (h.Opcode == OpEvent) != (h.Stream == -1) {
			return false
		}
		if h.Stream < -1 {
			return false
		}
	} else {
		if !h.Opcode.IsRequest(h.Version) || h.Stream < 0 {
			return false
		}
	}
	compressed := h.Flags&FlagCompression != 0 && h.Version < 5
	switch h.Opcode {
	case OpOptions:
		return h.Length == 0
	case OpReady:
		return h.Length == 0 || (compressed && h.Length <= 16)
	case OpStartup:
		return !compressed && h.Length >= 2 && h.Length <= 100000
	case OpResult:
		return h.Length >= 4 || (compressed && h.Length >= 1)
	case OpError:
		return h.Length >= 6 || (compressed && h.Length >= 1)
	case OpQuery, OpPrepare:
		return h.Length >= 4 || (compressed && h.Length >= 1)
	case OpExecute:
		return h.Length >= 2 || (compressed && h.Length >= 1)
	case OpEvent, OpRegister:
		return h.Length >= 2 || (compressed && h.Length >= 1)
	}
	return true
}
