package analyze

import (
	"encoding/hex"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/cqlsniff/cqlsniff/decode"
)

// registry is what one connection teaches about others: the text each
// prepared id stands for (drivers prepare a statement on one connection and
// execute it on all of them) and what each ScyllaDB node said in SUPPORTED.
// The analysis workers share one; it changes rarely (a PREPARE answered, a
// connection started), so a worker consults it only when its own copy
// misses, and then only if it grew since the worker last looked.
type registry struct {
	mu       sync.RWMutex
	ids      map[string]prepared // prepared id → its statement
	log      []preparedEntry     // ids in the order they were learned, for the workers' copies
	n        atomic.Int64        // len(log), read without the lock
	max      int                 // ids kept
	dropped  uint64              // ids not kept: max reached
	nodes    map[[16]byte]decode.ScyllaInfo
	maxNodes int
	// closed counts the closed connections the analyzers list (MaxClosed
	// bounds them together); closedShare is what each may list whatever
	// the others do (0: MaxClosed, a single analyzer).
	closed      atomic.Int64
	closedShare int
}

type prepared struct {
	text string
	lwt  bool
}

type preparedEntry struct {
	id string
	prepared
}

func newRegistry(maxIDs int) *registry {
	return &registry{ids: make(map[string]prepared), max: maxIDs, maxNodes: maxIDs}
}

// learn records that id stands for text (an EXECUTE's statement text, as
// named). Called on a RESULT of kind Prepared.
func (g *registry) learn(id []byte, text string, lwt bool) {
	g.mu.RLock()
	old, ok := g.ids[string(id)]
	g.mu.RUnlock()
	if ok && old.text == text && (old.lwt || !lwt) {
		return // re-prepared, as drivers do on every node and connection
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	old, ok = g.ids[string(id)]
	switch {
	case !ok && len(g.ids) >= g.max:
		g.dropped++
		return
	case ok && (old.text != text || old.lwt || !lwt):
		// The first text stays (an id names one statement; a worker
		// whose table is full names it "other"); the LWT mark is only
		// ever added, so an id's entry changes at most once.
		return
	}
	p := prepared{text: text, lwt: lwt}
	g.ids[string(id)] = p
	g.log = append(g.log, preparedEntry{id: string(id), prepared: p})
	g.n.Store(int64(len(g.log)))
}

// since returns the entries learned after the first n. The caller must not
// modify them.
func (g *registry) since(n int) []preparedEntry {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.log[n:len(g.log):len(g.log)]
}

// lookup returns what id stands for.
func (g *registry) lookup(id []byte) (prepared, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	p, ok := g.ids[string(id)]
	return p, ok
}

// node records what a ScyllaDB node said in SUPPORTED.
func (g *registry) node(ip [16]byte, info decode.ScyllaInfo) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.nodes) >= g.maxNodes {
		return
	}
	if g.nodes == nil {
		g.nodes = make(map[[16]byte]decode.ScyllaInfo)
	}
	g.nodes[ip] = info
}

// nodeInfo returns what the ScyllaDB node at ip said, on any connection: a
// connection whose own OPTIONS was not captured still gets its node's
// shard count.
func (g *registry) nodeInfo(ip [16]byte) (decode.ScyllaInfo, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	info, ok := g.nodes[ip]
	return info, ok
}

// unknownPrefix starts the name of an EXECUTE whose id was not (yet) known
// to the worker that saw it, followed by the id in hex.
const unknownPrefix = "prepared 0x"

// resolve renames a statement named while some of its prepared ids were
// unknown: an EXECUTE of an id prepared later in the capture, or on a
// connection another worker analyses, takes the text the id stands for, and
// so does each such child of a BATCH. The report is thereby the same
// whatever the order in which the workers learned the ids. ok is false
// when there was nothing to resolve.
func (g *registry) resolve(op decode.Opcode, text string) (name string, lwt, ok bool) {
	if !strings.Contains(text, unknownPrefix) || (op != decode.OpExecute && op != decode.OpBatch) {
		return text, false, false
	}
	var b strings.Builder
	rest := text
	for {
		i := strings.Index(rest, unknownPrefix)
		if i < 0 {
			break
		}
		h := rest[i+len(unknownPrefix):]
		n := 0
		for n < len(h) && isHex(h[n]) {
			n++
		}
		id, err := hex.DecodeString(h[:n&^1])
		p, found := prepared{}, false
		if err == nil && n > 0 && n%2 == 0 {
			p, found = g.lookup(id)
		}
		if !found {
			b.WriteString(rest[:i+len(unknownPrefix)+n])
			rest = h[n:]
			continue
		}
		b.WriteString(rest[:i])
		b.WriteString(p.text)
		lwt = lwt || p.lwt
		ok = true
		rest = h[n:]
	}
	if !ok {
		return text, false, false
	}
	b.WriteString(rest)
	name = b.String()
	if len(name) > maxResolvedName {
		// (A BATCH of many long statements.)
		cut := maxResolvedName
		for cut > 0 && !utf8.RuneStart(name[cut]) {
			cut--
		}
		name = name[:cut] + " ..."
	}
	return name, lwt && op == decode.OpExecute, true
}

// maxResolvedName bounds a statement name whose prepared ids were replaced
// by their texts.
const maxResolvedName = 4096
