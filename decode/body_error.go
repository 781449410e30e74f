package decode

// decodeErrorDetail decodes the code-specific fields of an ERROR into
// r.Error, from t positioned after the message. t is the caller's copy of
// its reader: whatever happens here, the decode of code and message stands.
//
// Layouts (native protocol v3–v5 §9/§8, Scylla protocol-extensions.md):
// the v5 reason map of the failures replaces v4's <numfailures> from v5 on,
// DSE versions included (DataStax's drivers compare the version number);
// the CAS contentions of Write_timeout exist from v5 on and are read only
// when present, since DSE servers are not known to send them.
func decodeErrorDetail(t *reader, v uint8, r *Response) {
	e := &r.Error
	switch r.ErrCode {
	case ErrUnavailable:
		e.Consistency = t.errConsistency()
		if n := t.i32(); t.ok() {
			e.Required = n
		}
		if n := t.i32(); t.ok() {
			e.Alive = n
		}
	case ErrWriteTimeout:
		t.errReplicas(e)
		if wt := t.str(); t.ok() {
			e.WriteType = wt
			if v >= 5 && string(wt) == "CAS" && t.left() >= 2 {
				if n := t.u16(); t.ok() {
					e.Contentions, e.HasContentions = n, true
				}
			}
		}
	case ErrReadTimeout:
		t.errReplicas(e)
		if b := t.u8(); t.ok() {
			e.DataPresent = b != 0
		}
	case ErrReadFailure:
		t.errReplicas(e)
		t.failures(v, e)
		if b := t.u8(); t.ok() {
			e.DataPresent = b != 0
		}
	case ErrWriteFailure:
		t.errReplicas(e)
		t.failures(v, e)
		if wt := t.str(); t.ok() {
			e.WriteType = wt
		}
	case ErrCASWriteUnknown:
		t.errReplicas(e)
	case ErrFunctionFailure:
		if ks := t.str(); t.ok() {
			e.Keyspace = ks
		}
		if fn := t.str(); t.ok() {
			e.Function = fn
		}
		if n := t.stringList(); t.ok() {
			e.ArgTypes = n
		}
	case ErrAlreadyExists:
		if ks := t.str(); t.ok() {
			e.Keyspace = ks
		}
		if tb := t.str(); t.ok() {
			e.Table = tb
		}
	case ErrUnprepared:
		if id := t.shortBytes(); t.ok() {
			e.PreparedID, r.PreparedID = id, id
		}
	default:
		rl := r.RateLimitCode
		if rl == 0 {
			rl = ErrScyllaRateLimit
		}
		if r.ErrCode != rl {
			// No fields, or unknown ones: the rest of the body is skipped.
			return
		}
		e.RateLimit = true
		if op := t.u8(); t.ok() {
			e.OpType = op
		}
		if by := t.u8(); t.ok() {
			e.RejectedByCoordinator = by != 0
		}
	}
	e.Partial = !t.ok()
}

// errConsistency reads a [consistency], returning 0 unless it is valid.
func (t *reader) errConsistency() Consistency {
	if c := t.consistency(); t.ok() {
		return c
	}
	return 0
}

// errReplicas reads the <cl><received><blockfor> that timeouts and
// failures start with.
func (t *reader) errReplicas(e *ErrorDetail) {
	e.Consistency = t.errConsistency()
	if n := t.i32(); t.ok() {
		e.Received = n
	}
	if n := t.i32(); t.ok() {
		e.BlockFor = n
	}
}

// failures reads v4's [int] <numfailures> or, from v5 on, the reason map:
// [int] n, then n × ([inetaddr] endpoint, [short] reason). The first
// MaxFailureReasons entries are kept; the walk over the rest is bounded by
// the body (each entry takes at least 7 bytes).
func (t *reader) failures(v uint8, e *ErrorDetail) {
	n := t.i32()
	if !t.ok() {
		return
	}
	if v < 5 {
		e.NumFailures = n
		return
	}
	if n < 0 {
		t.fail(ErrMalformed)
		return
	}
	if !t.need(int64(n) * 7) {
		return
	}
	e.NumFailures = n
	for i := 0; i < int(n) && t.ok(); i++ {
		addr := t.inetAddr()
		code := FailureCode(t.u16())
		if t.ok() && i < MaxFailureReasons {
			e.Reasons[i] = FailureReason{Endpoint: addr, Code: code}
			e.NumReasons = i + 1
		}
	}
}
