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

	// DSE_V1 and DSE_V2 only. PageSizeInBytes says PageSize counts bytes,
	// not rows (flag QueryPageSizeBytes). ContinuousPaging is set when the
	// continuous paging options of flag QueryContinuousPaging were decoded:
	// MaxPages and PagesPerSecond (drivers send 0 for no limit), and on DSE_V2
	// NextPages, the pages the server may send before the client asks for
	// more with a REVISE_REQUEST.
	PageSizeInBytes  bool
	ContinuousPaging bool
	MaxPages         int32
	PagesPerSecond   int32
	NextPages        int32
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
	// CustomPayloadRaw is the whole custom payload [bytes map], count
	// included, for ForEachBytesMap; nil without the flag.
	CustomPayloadRaw []byte

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

	// CREDENTIALS (v1): only the number of entries of the plaintext
	// credentials map; keys and values are never exposed.
	Credentials int

	// REVISE_REQUEST (DSE): what to do with the continuous paging of the
	// request sent on stream RevisionStream (ReviseCancel or
	// ReviseMorePages); RevisionNextPages is the number of further pages
	// asked for by ReviseMorePages, 0 otherwise.
	RevisionType      int32
	RevisionStream    int32
	RevisionNextPages int32
}

// Reset clears r for the next decode, keeping KeepValues and the capacity
// of Children and Params.Values.
func (r *Request) Reset() {
	clear(r.Children)
	clear(r.Params.Values)
	// Zeroed in place, the kept fields put back after: a composite literal
	// that reads r is built in a temporary and copied over r, twice the
	// work on the per-request path.
	keep, children, values := r.KeepValues, r.Children[:0], r.Params.Values[:0]
	*r = Request{}
	r.KeepValues, r.Children, r.Params.Values = keep, children, values
}

// SchemaChange is the body of a RESULT Schema_change or a SCHEMA_CHANGE event.
// In v1/v2 there is no target: Keyspace and Name (the table, empty for a
// keyspace change) follow the change directly.
type SchemaChange struct {
	Change, Target, Keyspace, Name []byte
	// ArgTypes is the number of argument types of a FUNCTION or AGGREGATE.
	ArgTypes int
}

// Response is what analysis needs from a response body, after the optional
// tracing id, warnings and custom payload prefixes. Slices alias the body.
type Response struct {
	Opcode Opcode

	// RateLimitCode is the error code the server advertised for Scylla's
	// rate-limit error (ScyllaInfo.RateLimitErrorCode); 0 means the usual
	// ErrScyllaRateLimit. A code the protocol gives fields of its own
	// (Unavailable, the timeouts and failures, Already_exists, Unprepared...)
	// keeps its layout whatever this says. It is an input: Reset and the
	// decoders leave it as it is.
	RateLimitCode ErrorCode

	TracingID     []byte // 16 bytes when the tracing flag was set
	Warnings      int
	CustomPayload int // number of custom payload entries
	// CustomPayloadRaw is the whole custom payload [bytes map], count
	// included, for ForEachBytesMap (Scylla's tablets-routing-v1 entry, see
	// TabletsRouting); nil without the flag.
	CustomPayloadRaw []byte

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
	// PreparedFlags are the flags of a Prepared result's bind-marker
	// metadata. LWT reports ScyllaLWTBit in them: Scylla sets it on
	// conditional statements, but only on connections that negotiated
	// SCYLLA_LWT_ADD_METADATA_MARK (and may advertise another bit in
	// ScyllaInfo.LWTMask); elsewhere the bit means nothing and is never set
	// by known servers.
	PreparedFlags uint32
	LWT           bool

	// ERROR: the code and message, then the code-specific fields.
	ErrCode    ErrorCode
	ErrMessage []byte
	Error      ErrorDetail

	// EVENT.
	EventType []byte
	Change    []byte // TOPOLOGY/STATUS change; CLIENT_ROUTES_CHANGE change
	// NodeAddr (4 or 16 bytes) and NodePort are the [inet] of a
	// TOPOLOGY_CHANGE or STATUS_CHANGE.
	NodeAddr []byte
	NodePort int32
	// CLIENT_ROUTES_CHANGE (Scylla): sizes of the connection id and host id
	// lists.
	ConnectionIDs int
	HostIDs       int

	// SUPPORTED: the raw [string multimap]; walk it with ForEachMultimap.
	Supported []byte

	// AUTHENTICATE: the authenticator class.
	Authenticator []byte
	// AUTH_CHALLENGE and AUTH_SUCCESS: only the token's length (0 for a null
	// token); the token itself may be secret and is never exposed.
	AuthTokenLen int
}

// Reset clears r for the next decode, keeping RateLimitCode.
func (r *Response) Reset() {
	code := r.RateLimitCode // (see Request.Reset)
	*r = Response{}
	r.RateLimitCode = code
}

// MaxFailureReasons is how many entries of a v5 failure reason map
// ErrorDetail keeps.
const MaxFailureReasons = 4

// FailureReason is one entry of the v5 reason map of Read_failure and
// Write_failure: a replica and why it failed. Endpoint aliases the body.
type FailureReason struct {
	Endpoint []byte // [inetaddr]: 4 or 16 address bytes
	Code     FailureCode
}

// ErrorDetail is the code-specific part of an ERROR body. Which fields are
// set depends on the code (listed per field); slices alias the body. A tail
// that is cut or impossible never fails the decode of the code and message:
// Partial says so instead.
type ErrorDetail struct {
	// Partial is set when the code has fields after the message but the body
	// ended, or held an impossible value (a consistency above LOCAL_ONE, an
	// address of 5 bytes...), before all were read. The fields read before
	// that point are set.
	Partial bool
	// RateLimit is set when the code is Scylla's rate-limit code (see
	// Response.RateLimitCode); OpType and RejectedByCoordinator follow.
	RateLimit bool

	// Unavailable, Write_timeout, Read_timeout, Read_failure, Write_failure,
	// CAS_write_unknown.
	Consistency Consistency
	// Unavailable: replicas needed and replicas known alive.
	Required, Alive int32
	// Timeouts, failures and CAS_write_unknown: replicas that answered and
	// replicas needed.
	Received, BlockFor int32
	// Read_timeout, Read_failure: whether the replica asked for data answered.
	DataPresent bool
	// Write_timeout, Write_failure: SIMPLE, BATCH, UNLOGGED_BATCH, COUNTER,
	// BATCH_LOG, CAS, VIEW, CDC...
	WriteType []byte
	// Write_timeout in v5+ with write type CAS: the Paxos contentions.
	Contentions    uint16
	HasContentions bool
	// Read_failure, Write_failure: failed replicas (v4 <numfailures>, v5
	// size of the reason map) and, in v5+, the first NumReasons entries of
	// the reason map.
	NumFailures int32
	NumReasons  int
	Reasons     [MaxFailureReasons]FailureReason

	// Already_exists: the keyspace and the table ("" for a keyspace).
	// Function_failure: the keyspace of the function.
	Keyspace, Table []byte
	// Function_failure: the function and its number of argument types.
	Function []byte
	ArgTypes int
	// Unprepared: the unknown id (also in Response.PreparedID).
	PreparedID []byte
	// Scylla rate limit: 0 read, 1 write; whether the coordinator (rather
	// than a replica) rejected the operation.
	OpType                uint8
	RejectedByCoordinator bool
}
