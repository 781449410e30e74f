package decode

import "errors"

// Errors returned by the body decoders. They are sentinels so the hot path
// never formats an error per frame.
var (
	ErrTruncated = errors.New("cql: body shorter than its fields claim")
	ErrMalformed = errors.New("cql: malformed body")
	ErrTooLarge  = errors.New("cql: decompressed size over the limit")
)

// QueryParams are the <query_parameters> shared by QUERY and EXECUTE (and the
// tail of BATCH). Slices alias the body passed to the decoder.
type QueryParams struct {
	Consistency       Consistency
	Flags             uint32 // [byte] in v3/v4, [int] in v5 and DSE
	ValuesCount       int
	Values            [][]byte // bound values (nil entries for null/unset); only filled when asked
	PageSize          int32    // -1 when absent
	PagingState       []byte   // nil when absent
	SerialConsistency Consistency
	HasSerial         bool
	Timestamp         int64
	HasTimestamp      bool
	Keyspace          []byte // v5 WITH_KEYSPACE
	NowInSeconds      int32
	HasNowInSeconds   bool
}

// BatchChild is one statement of a BATCH.
type BatchChild struct {
	Kind        uint8  // 0 query text, 1 prepared id
	Query       []byte // Kind 0
	PreparedID  []byte // Kind 1
	ValuesCount int
}

// Request is what analysis needs from a request body. The decoder resets it
// and fills it; byte slices alias the body and are valid as long as the body
// is. Children is truncated and reused, so a reused Request allocates nothing
// in the steady state.
type Request struct {
	Opcode Opcode

	// STARTUP options (other keys are ignored).
	CQLVersion, Compression, DriverName, DriverVersion []byte

	// QUERY and PREPARE: the statement text.
	Query []byte

	// EXECUTE.
	PreparedID       []byte
	ResultMetadataID []byte // v5 (and Scylla's metadata-id extension)

	// QUERY, EXECUTE, BATCH.
	Params    QueryParams
	HasParams bool

	// BATCH.
	BatchType uint8 // 0 LOGGED, 1 UNLOGGED, 2 COUNTER
	Children  []BatchChild

	// REGISTER: number of event types asked for.
	EventTypes int

	// AUTH_RESPONSE: only the token's length; the token itself (a password
	// for SASL PLAIN) is never exposed.
	AuthTokenLen int
}

// SchemaChange is the body of a RESULT Schema_change or a SCHEMA_CHANGE event.
type SchemaChange struct {
	Change, Target, Keyspace, Name []byte
}

// Response is what analysis needs from a response body, after the optional
// tracing id, warnings and custom payload prefixes. Slices alias the body.
type Response struct {
	Opcode Opcode

	TracingID     []byte // 16 bytes when the tracing flag was set
	Warnings      int
	CustomPayload int // number of custom payload entries

	// RESULT.
	Kind             ResultKind
	Columns          int32
	Rows             int32 // valid when RowsKnown
	RowsKnown        bool
	HasMorePages     bool
	Keyspace         []byte // Set_keyspace; Rows global table spec keyspace
	Table            []byte // Rows global table spec table
	PreparedID       []byte
	ResultMetadataID []byte
	Schema           SchemaChange // Schema_change result and SCHEMA_CHANGE event

	// ERROR.
	ErrCode    ErrorCode
	ErrMessage []byte

	// EVENT.
	EventType []byte
	Change    []byte // TOPOLOGY/STATUS change

	// SUPPORTED: the raw [string multimap]; walk it with ForEachMultimap.
	Supported []byte

	// AUTHENTICATE: the authenticator class.
	Authenticator []byte
}
