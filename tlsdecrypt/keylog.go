package tlsdecrypt

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
)

// DefaultMaxEntries bounds a KeyLog made with NewKeyLog(0): 100,000 client
// randoms hold about 30 MB of secrets, enough for a day of connections from
// a busy application server, and a runaway key log cannot take more.
const DefaultMaxEntries = 100_000

// maxLine is the longest key log line accepted. The longest real one,
// CLIENT_HANDSHAKE_TRAFFIC_SECRET with a 48-byte secret, is 193 bytes; a
// longer line is garbage and is skipped without being buffered.
const maxLine = 512

// Label names a secret in an NSS key log.
type Label uint8

// The labels a Conn uses. Other NSS labels (EXPORTER_SECRET, the early
// data secrets, RSA) are counted as ignored.
const (
	LabelClientRandom    Label = iota // CLIENT_RANDOM: the TLS 1.2 master secret (48 bytes)
	LabelClientHandshake              // CLIENT_HANDSHAKE_TRAFFIC_SECRET (TLS 1.3)
	LabelServerHandshake              // SERVER_HANDSHAKE_TRAFFIC_SECRET (TLS 1.3)
	LabelClientTraffic0               // CLIENT_TRAFFIC_SECRET_0 (TLS 1.3)
	LabelServerTraffic0               // SERVER_TRAFFIC_SECRET_0 (TLS 1.3)
	numLabels
)

var labelNames = [numLabels]string{
	"CLIENT_RANDOM",
	"CLIENT_HANDSHAKE_TRAFFIC_SECRET",
	"SERVER_HANDSHAKE_TRAFFIC_SECRET",
	"CLIENT_TRAFFIC_SECRET_0",
	"SERVER_TRAFFIC_SECRET_0",
}

// ignoredLabels are written by real TLS stacks but not needed to read
// application data: skipping them is not a sign of a damaged file.
var ignoredLabels = []string{
	"CLIENT_EARLY_TRAFFIC_SECRET",
	"EARLY_EXPORTER_SECRET",
	"EXPORTER_SECRET",
	"EARLY_EXPORTER_MASTER_SECRET",
	"EXPORTER_MASTER_SECRET",
	"RSA",
	"PMS_CLIENT_RANDOM",
	"ECH_SECRET",
	"ECH_CONFIG",
}

func (l Label) String() string {
	if l < numLabels {
		return labelNames[l]
	}
	return "Label(invalid)"
}

// secret is one secret of a key log entry; n == 0 means absent.
type secret struct {
	n uint8
	b [48]byte
}

func (s *secret) bytes() []byte { return s.b[:s.n] }

// secretSet is everything a key log says about one client random.
type secretSet struct {
	s [numLabels]secret
}

// table holds the secrets, two pointers away from KeyLog: fmt shows what
// one pointer leads to when a verb does not fit it (%s of a pointer), never
// what a second one does, so no formatting of a KeyLog shows a secret.
type table struct {
	m     map[[32]byte]*secretSet
	order [][32]byte // client randoms in insertion order, a ring once full
	head  int        // oldest entry of order once it is full
	chunk []byte     // read buffer, reused across Refresh calls

	// TLS 1.2 master secrets by session ID and by session ticket, learned
	// from full handshakes so that resumed ones can be decrypted: a
	// resumed TLS 1.2 handshake makes no new master secret, and some
	// stacks (crypto/tls) log none for it.
	sess      map[sessionKey]*[48]byte
	sessOrder []sessionKey
	sessHead  int
}

// sessionKey names a TLS 1.2 session: kindSessionID with the ID (at most 32
// bytes) and its length, or kindTicket with the SHA-256 of the ticket.
type sessionKey struct {
	kind uint8
	n    uint8
	b    [32]byte
}

const (
	kindSessionID = 1
	kindTicket    = 2
)

// KeyLogStats counts what a KeyLog has read. Lines are counted once each
// (a final line without a newline is counted when it is read as final).
type KeyLogStats struct {
	Entries  int    // client randoms held now
	Secrets  uint64 // lines that gave a secret
	Ignored  uint64 // comments, blank lines and labels not needed (EXPORTER_SECRET, early data, RSA)
	Garbage  uint64 // lines skipped: unknown label, bad hex, wrong length, over-long line
	Evicted  uint64 // client randoms dropped, oldest first, to stay within the bound
	Rereads  uint64 // times the file was found truncated or replaced and read again from its start
	Sessions int    // TLS 1.2 sessions (IDs and tickets) whose master secret was learned from a decrypted full handshake
	Offset   int64  // bytes of the file read so far
}

// KeyLog holds TLS secrets from an NSS key log (SSLKEYLOGFILE, Go's
// tls.Config.KeyLogWriter, Python's keylog_filename, Node's keylog event,
// rustls' KeyLogFile), keyed by client random. It is safe for concurrent
// use: Refresh may run while Conns in other goroutines look secrets up.
//
// It holds at most a fixed number of client randoms; beyond it the oldest
// are evicted and counted. Damaged lines are counted and skipped, never
// fatal, because a live key log is written by someone else while we read it.
// No error, String or formatting of a KeyLog contains secret bytes; errors
// name the file.
type KeyLog struct {
	mu  sync.RWMutex
	max int
	t   *table
	gen atomic.Uint64 // bumped whenever a secret is added

	// The file Load read, for Refresh.
	path     string
	off      int64       // bytes of complete lines consumed
	fi       os.FileInfo // identity of the file read, to notice a replacement
	headN    int         // bytes of the file's start covered by headSum
	headSum  uint32      // crc32 of them, to notice a rewrite in place
	tailSeen bool        // a final line without newline at off was already counted by Load
	skipping bool        // inside an over-long line, skipping to its newline

	stats KeyLogStats
}

// NewKeyLog returns an empty key log holding at most maxEntries client
// randoms (DefaultMaxEntries if maxEntries <= 0).
func NewKeyLog(maxEntries int) *KeyLog {
	if maxEntries <= 0 {
		maxEntries = DefaultMaxEntries
	}
	return &KeyLog{max: maxEntries, t: &table{m: make(map[[32]byte]*secretSet)}}
}

// Load reads a key log file with the default bound. See (*KeyLog).Load.
func Load(path string) (*KeyLog, error) {
	k := NewKeyLog(0)
	return k, k.Load(path)
}

// Load reads the key log file at path from its start and remembers it for
// Refresh. A last line without a newline is taken as complete (a file
// written once), and read again by Refresh if it grows. If the file cannot
// be opened the error says so, and the path is still remembered: a live
// capture may start before the application has created its key log.
func (k *KeyLog) Load(path string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.path = path
	k.off, k.fi, k.headN, k.tailSeen, k.skipping = 0, nil, 0, false, false
	return k.readFile(true)
}

// Refresh reads what was appended to the file given to Load since the last
// read: a live capture calls it periodically (or when a Conn reports
// StatusNoKeys) while the application writes new secrets. A file that was
// truncated or replaced is read again from its start; secrets already held
// are kept, as they still decrypt the connections they belong to. A last
// line without a newline is left for the next Refresh, since its writer may
// not have finished it. Refresh without a prior Load does nothing.
func (k *KeyLog) Refresh() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.path == "" {
		return nil
	}
	return k.readFile(false)
}

// ReadFrom reads key log lines from r until EOF, the last one complete
// with or without a newline. It does not change what Refresh reads.
func (k *KeyLog) ReadFrom(r io.Reader) (int64, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	skipping := false
	buf := k.chunk()
	var total int64
	n0 := 0
	added := false
	for {
		n, err := r.Read(buf[n0:])
		total += int64(n)
		data := buf[:n0+n]
		used, a := k.consume(data, &skipping, nil)
		added = added || a
		n0 = copy(buf, data[used:])
		if err == io.EOF {
			break
		}
		if err != nil {
			k.bump(added)
			return total, err
		}
	}
	if n0 > 0 && !skipping {
		added = k.line(buf[:n0], true) || added
	}
	k.bump(added)
	return total, nil
}

// Lookup returns which secrets are logged for a client random (never the
// secrets: Conns look them up themselves).
func (k *KeyLog) Lookup(clientRandom [32]byte) (LabelSet, bool) {
	var s secretSet
	if !k.lookupInto(&clientRandom, &s) {
		return 0, false
	}
	var ls LabelSet
	for l := range numLabels {
		if s.s[l].n > 0 {
			ls |= 1 << l
		}
	}
	return ls, true
}

// Generation changes whenever secrets are added, so a Conn waiting for keys
// looks them up again only when there may be something new.
func (k *KeyLog) Generation() uint64 {
	if k == nil {
		return 0
	}
	return k.gen.Load()
}

// Stats returns the counters.
func (k *KeyLog) Stats() KeyLogStats {
	k.mu.RLock()
	defer k.mu.RUnlock()
	s := k.stats
	s.Entries = len(k.t.m)
	s.Sessions = len(k.t.sess)
	s.Offset = k.off
	return s
}

// String describes the key log without its secrets.
func (k *KeyLog) String() string {
	s := k.Stats()
	return fmt.Sprintf("key log %q: %d client randoms, %d secrets, %d garbage lines", k.path, s.Entries, s.Secrets, s.Garbage)
}

func (k *KeyLog) lookupInto(cr *[32]byte, dst *secretSet) bool {
	if k == nil {
		return false
	}
	k.mu.RLock()
	s, ok := k.t.m[*cr]
	if ok {
		*dst = *s
	}
	k.mu.RUnlock()
	return ok
}

// learnSession remembers the master secret of a TLS 1.2 session, within
// the same bound as client randoms, oldest first out.
func (k *KeyLog) learnSession(key *sessionKey, master []byte) {
	if k == nil || len(master) != 48 {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	t := k.t
	if t.sess == nil {
		t.sess = make(map[sessionKey]*[48]byte)
	}
	if _, ok := t.sess[*key]; !ok {
		if len(t.sessOrder) < k.max {
			t.sessOrder = append(t.sessOrder, *key)
		} else {
			delete(t.sess, t.sessOrder[t.sessHead])
			t.sessOrder[t.sessHead] = *key
			t.sessHead = (t.sessHead + 1) % len(t.sessOrder)
		}
	}
	t.sess[*key] = (*[48]byte)(bytes.Clone(master))
	k.gen.Add(1) // a resumed connection may be waiting for it
}

func (k *KeyLog) lookupSession(key *sessionKey, dst *secret) bool {
	if k == nil {
		return false
	}
	k.mu.RLock()
	m, ok := k.t.sess[*key]
	if ok {
		dst.n, dst.b = 48, *m
	}
	k.mu.RUnlock()
	return ok
}

func (k *KeyLog) chunk() []byte {
	if k.t.chunk == nil {
		k.t.chunk = make([]byte, 64<<10)
	}
	return k.t.chunk
}

func (k *KeyLog) bump(added bool) {
	if added {
		k.gen.Add(1)
	}
}

// readFile reads the remembered file from k.off; final says whether a last
// line without a newline counts as complete.
func (k *KeyLog) readFile(final bool) error {
	f, err := os.Open(k.path)
	if err != nil {
		return err // *fs.PathError: names the file, nothing of its content
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if k.fi != nil && (!os.SameFile(k.fi, fi) || fi.Size() < k.off || !k.sameHead(f)) {
		k.stats.Rereads++
		k.off, k.headN, k.tailSeen, k.skipping = 0, 0, false, false
	}
	k.fi = fi
	if _, err := f.Seek(k.off, io.SeekStart); err != nil {
		return err
	}
	buf := k.chunk()
	n0 := 0
	added := false
	for {
		n, err := f.Read(buf[n0:])
		data := buf[:n0+n]
		used, a := k.consume(data, &k.skipping, &k.tailSeen)
		added = added || a
		k.off += int64(used)
		n0 = copy(buf, data[used:])
		if err == io.EOF {
			break
		}
		if err != nil {
			k.bump(added)
			return fmt.Errorf("key log %s: %w", k.path, err)
		}
	}
	if n0 > 0 && !k.skipping {
		// A last line without a newline: Load takes it as complete; Refresh
		// only uses it if it parses, and reads it again once finished.
		switch {
		case final && !k.tailSeen:
			added = k.line(buf[:n0], true) || added
			k.tailSeen = true
		case !final:
			added = k.line(buf[:n0], false) || added
		}
	}
	k.noteHead(f)
	k.bump(added)
	return nil
}

// noteHead remembers a checksum of the file's first bytes so that a file
// rewritten in place (same inode, at least as long) is noticed.
func (k *KeyLog) noteHead(f *os.File) {
	if k.headN >= 256 || k.off <= int64(k.headN) {
		return
	}
	n := int(min(k.off, 256))
	var b [256]byte
	if m, _ := f.ReadAt(b[:n], 0); m == n {
		k.headN, k.headSum = n, crc32.ChecksumIEEE(b[:n])
	}
}

func (k *KeyLog) sameHead(f *os.File) bool {
	if k.headN == 0 {
		return true
	}
	var b [256]byte
	m, _ := f.ReadAt(b[:k.headN], 0)
	return m == k.headN && crc32.ChecksumIEEE(b[:m]) == k.headSum
}

// consume parses the complete lines of data and returns the bytes used: up
// to its last newline, or all of it when its unfinished tail is already
// longer than any valid line (then *skipping is set until the next newline).
// If *counted is set, the first line was already counted by Load (it was
// the file's last line, without a newline): it is parsed again uncounted.
func (k *KeyLog) consume(data []byte, skipping, counted *bool) (used int, added bool) {
	for {
		i := bytes.IndexByte(data[used:], '\n')
		if i < 0 {
			break
		}
		line := data[used : used+i]
		used += i + 1
		if *skipping {
			*skipping = false // the rest of a line already counted as garbage
			continue
		}
		quiet := counted != nil && *counted
		if quiet {
			*counted = false
		}
		if len(line) > maxLine {
			// Over-long, whatever it says: garbage, as it is when it
			// arrives in pieces and overflows before its newline (the
			// fuzzer found a long comment read both ways).
			if !quiet {
				k.stats.Garbage++
			}
			continue
		}
		added = k.line(line, !quiet) || added
	}
	if len(data)-used > maxLine {
		if !*skipping {
			if counted != nil && *counted {
				*counted = false // Load counted its start already
			} else {
				k.stats.Garbage++
			}
			*skipping = true
		}
		used = len(data)
	}
	return used, added
}

// line parses one key log line. With count false (a line that may still
// be growing) it only takes a valid secret and counts nothing.
func (k *KeyLog) line(line []byte, count bool) bool {
	line = bytes.TrimRight(line, "\r \t")
	line = bytes.TrimLeft(line, " \t")
	if len(line) == 0 || line[0] == '#' {
		if count {
			k.stats.Ignored++
		}
		return false
	}
	lbl, rest := field(line)
	crHex, rest := field(rest)
	secHex, rest := field(rest)
	bad := len(rest) > 0 || len(crHex) != 64 || len(secHex) == 0
	which := numLabels
	for i, name := range labelNames {
		if string(lbl) == name {
			which = Label(i)
		}
	}
	if which == numLabels {
		if count {
			if !bad && isIgnored(lbl) {
				k.stats.Ignored++
			} else {
				k.stats.Garbage++
			}
		}
		return false
	}
	var cr [32]byte
	var s secret
	n := len(secHex) / 2
	ok := !bad && len(secHex)%2 == 0 &&
		(n == 48 || which != LabelClientRandom && n == 32)
	if ok {
		_, err1 := hex.Decode(cr[:], crHex)
		_, err2 := hex.Decode(s.b[:n], secHex)
		ok = err1 == nil && err2 == nil
		s.n = uint8(n)
	}
	if !ok {
		if count {
			k.stats.Garbage++
		}
		return false
	}
	if count {
		k.stats.Secrets++
	}
	k.insert(&cr, which, &s)
	return true
}

func isIgnored(lbl []byte) bool {
	for _, name := range ignoredLabels {
		if string(lbl) == name {
			return true
		}
	}
	return false
}

// field splits off the first space- or tab-separated field of b.
func field(b []byte) (f, rest []byte) {
	i := 0
	for i < len(b) && b[i] != ' ' && b[i] != '\t' {
		i++
	}
	f, rest = b[:i], b[i:]
	for len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
		rest = rest[1:]
	}
	return f, rest
}

func (k *KeyLog) insert(cr *[32]byte, l Label, s *secret) {
	t := k.t
	e, ok := t.m[*cr]
	if !ok {
		e = new(secretSet)
		if len(t.order) < k.max {
			t.order = append(t.order, *cr)
		} else {
			delete(t.m, t.order[t.head])
			k.stats.Evicted++
			t.order[t.head] = *cr
			t.head = (t.head + 1) % len(t.order)
		}
	}
	e.s[l] = *s
	t.m[*cr] = e
}

// LabelSet says which secrets a key log holds for a client random.
type LabelSet uint8

// Has reports whether the secret for l is in the set.
func (s LabelSet) Has(l Label) bool { return l < numLabels && s&(1<<l) != 0 }

func (s LabelSet) String() string {
	var names []string
	for l := range numLabels {
		if s.Has(l) {
			names = append(names, l.String())
		}
	}
	return "{" + strings.Join(names, " ") + "}"
}
