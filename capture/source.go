package capture

import "errors"

// ErrTimeout is returned by a live Source's Next when no packet arrived
// within its read timeout, and by a FileSource's when it skipped a great
// many records without finding a TCP packet. It is not an error condition:
// callers use the pause to do periodic work (publish a snapshot, check for
// cancellation) and call Next again.
var ErrTimeout = errors.New("capture: no packet before the read timeout")
