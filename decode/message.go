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
	Consistency Consistency
	Flags       uint32 // [byte] in v2–v4, [int] in v5 and DSE; see the Query* masks
	// ValuesCount is the number of bound values the wire announces; for a
	// BATCH, the total over its statements, set once all are decoded.
	ValuesCount int
	// Values are the bound values, in wire order, only filled when the
	// Request's KeepValues is set. A null or unset value is a nil entry. For
	// a BATCH they are the values of all statements back to back (see
	// BatchChild.FirstValue). On a prefix body it may be shorter than
	// ValuesCount.
	Values            [][]byte
	PageSize          int32  // -1 when absent
	PagingState       []byte // nil when absent
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
	// FirstValue is the index in Params.Values of this statement's first
	// value when the Request keeps values.
	FirstValue int
}

// Request is what analysis needs from a request body. The decoder resets it
// and fills it; byte slices alias the body and are valid as long as the body
// is. Children and Params.Values are truncated and reused, so a reused
// Request allocates nothing in the steady state.
type Request struct {
	Opcode Opcode

	// KeepValues asks the decoder to fill Params.Values. It is an input:
	// Reset and the decoders leave it as it is.
	KeepValues bool

	CustomPayload int // number of custom payload entries (flag 0x04, v4+)

	// STARTUP options (other keys are ignored).
	CQLVersion, Compression, DriverName, DriverVersion []byte

	// QUERY and PREPARE: the statement text.
	Query []byte
	// PREPARE: the v5 WITH_KEYSPACE keyspace (QUERY, EXECUTE and BATCH carry
	// theirs in Params.Keyspace).
	Keyspace []byte

	// EXECUTE.
	PreparedID       []byte
	ResultMetadataID []byte // v5 (and Scylla's metadata-id extension)

	// QUERY, EXECUTE, BATCH.
	Params    QueryParams
	HasParams bool // the consistency and flags were decoded

	// BATCH.
	BatchType uint8 // 0 LOGGED, 1 UNLOGGED, 2 COUNTER
	Children  []BatchChild

	// REGISTER: number of event types asked for.
	EventTypes int

	// AUTH_RESPONSE: only the token's length (0 for a null token); the token
	// itself (a password for SASL PLAIN) is never exposed.
	AuthTokenLen int
}

// Reset clears r for the next decode, keeping KeepValues and the capacity
// of Children and Params.Values.
func (r *Request) Reset() {
	clear(r.Children)
	clear(r.Params.Values)
	*r = Request{
		KeepValues: r.KeepValues,
		Children:   r.Children[:0],
		Params:     QueryParams{Values: r.Params.Values[:0]},
	}
}

// SchemaChange is the body of a RESULT Schema_change or a SCHEMA_CHANGE event.
// In v1/v2 there is no target: Keyspace and Name (the table, empty for a
// keyspace change) follow the change directly.
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
	Kind         ResultKind
	Columns      int32 // Rows; Prepared: columns of the result metadata
	Rows         int32 // valid when RowsKnown
	RowsKnown    bool
	HasMorePages bool
	PagingState  []byte // Rows with Has_more_pages
	// Keyspace is the Set_keyspace keyspace, or the global table spec
	// keyspace of Rows; for Prepared, that of the bind-marker metadata, else
	// that of the result metadata. Table likewise.
	Keyspace []byte
	Table    []byte
	// PreparedID is the id of a Prepared result, or the unknown id of an
	// Unprepared error.
	PreparedID []byte
	// ResultMetadataID is the result metadata id of a Prepared result (v5,
	// DSE_V2, Scylla's extension) or the new id of a Rows result with
	// Metadata_changed.
	ResultMetadataID []byte
	BindMarkers      int32        // Prepared: bind markers (columns of the prepared metadata)
	PKIndexes        int32        // Prepared, v4+: partition key indexes of the bind markers
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

// Reset clears r for the next decode.
func (r *Response) Reset() { *r = Response{} }
