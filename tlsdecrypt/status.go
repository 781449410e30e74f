package tlsdecrypt

// What a Conn reports: directions, statuses and counters.

// Dir is the direction of a stream within a connection. The caller says
// which side it takes for the client, usually from the server port (9142)
// or from who sent the SYN. If the first record proves it wrong (a
// ClientHello sent FromServer), the Conn takes the handshake's word for it,
// keeps reporting in the caller's directions, and sets Stats.Swapped.
type Dir uint8

// Directions.
const (
	FromClient Dir = 0 // client to server
	FromServer Dir = 1 // server to client
)

func (d Dir) String() string {
	switch d {
	case FromClient:
		return "client→server"
	case FromServer:
		return "server→client"
	}
	return "Dir(invalid)"
}

// Status says how far decryption of a connection or direction got.
type Status uint8

// Statuses. The ones from StatusNoHandshake on are final: nothing more
// will be decrypted.
const (
	StatusHandshake   Status = iota // no verdict yet: the handshake is under way
	StatusDecrypting                // keys found: records are being decrypted
	StatusNoKeys                    // the key log has no secrets for the connection (yet: a later Refresh may bring them)
	StatusNoHandshake               // the capture started after the handshake: no client random, no keys to match
	StatusUnsupported               // a protocol version or cipher suite this package does not decrypt (Stats.Reason names it)
	StatusFailed                    // a record failed authentication: wrong keys or damaged bytes; the direction was given up
	StatusMalformed                 // bytes that are not TLS records where records were expected
	StatusGap                       // bytes were lost from the capture: record boundaries and sequence numbers are gone
	StatusOverflow                  // more than the waiting bound arrived before the keys, at a point it could not be skipped over
)

var statusNames = [...]string{
	"handshake",
	"decrypting",
	"no keys in the key log",
	"handshake not captured",
	"unsupported",
	"failed",
	"malformed record",
	"bytes lost in the capture",
	"gave up waiting for keys",
}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "Status(invalid)"
}

// Final reports whether nothing more will be decrypted.
func (s Status) Final() bool { return s >= StatusNoHandshake }

// rank orders statuses for a connection's summary: the worst direction wins.
var rank = [...]uint8{
	StatusDecrypting:  0,
	StatusHandshake:   1,
	StatusNoKeys:      2,
	StatusOverflow:    3,
	StatusGap:         4,
	StatusUnsupported: 5,
	StatusMalformed:   6,
	StatusFailed:      7,
	StatusNoHandshake: 8,
}

// DirStats counts one direction. Every byte fed is in exactly one of
// DoneBytes, SkippedBytes and HeldBytes.
type DirStats struct {
	Status         Status
	Records        uint64 // records handled: parsed in the clear or decrypted
	AppRecords     uint64 // application_data records delivered
	WireBytes      uint64 // bytes fed
	DoneBytes      uint64 // wire bytes of the records handled
	SkippedBytes   uint64 // bytes not decrypted: no handshake, unsupported, failed, over the waiting bound
	SkippedRecords uint64 // whole records among them (bytes out of record sync are not counted as records)
	HeldBytes      uint64 // bytes held now: a partial record, records waiting for keys
	PlainBytes     uint64 // application plaintext delivered
	AuthFailures   uint64 // records that failed authentication
	KeyUpdates     uint64 // TLS 1.3 KeyUpdates followed
	Alerts         uint64 // alert records (in the clear or decrypted)
}

// Stats describes a connection.
type Stats struct {
	Status  Status
	Version uint16      // negotiated version (0x0303 TLS 1.2, 0x0304 TLS 1.3), 0 before the ServerHello
	Suite   uint16      // negotiated cipher suite, 0 before the ServerHello
	Swapped bool        // the handshake showed FromServer to be the client
	Dirs    [2]DirStats // by the caller's Dir
	renego  bool
}

// Reason is the status as a report says it: "unsupported: TLS 1.1",
// "unsupported: TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "failed: ...".
func (s Stats) Reason() string {
	switch s.Status {
	case StatusUnsupported:
		switch {
		case s.Version != versionTLS12 && s.Version != versionTLS13 && s.Version != 0:
			return "unsupported: " + VersionName(s.Version)
		case s.Suite != 0 && findSuite(s.Version, s.Suite) == nil:
			return "unsupported: " + SuiteName(s.Suite)
		}
		if s.renego {
			return "unsupported: renegotiation"
		}
		return "unsupported: a cipher the crypto module refuses (FIPS 140-only mode)"
	case StatusFailed:
		for _, d := range s.Dirs {
			if d.AuthFailures > 0 {
				return "failed: a record failed authentication (wrong keys or damaged capture)"
			}
		}
		return "failed: the logged secret does not fit the cipher suite"
	}
	return s.Status.String()
}
