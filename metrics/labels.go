package metrics

import (
	"hash/fnv"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// otherLabel is the label value shared by everything beyond a cap.
const otherLabel = "other"

// A slot is one label value given to one raw value (a client IP, a server
// address, a driver name and version).
type slot struct {
	raw        string
	label      string
	label2     string    // drivers: the version
	lastActive time.Time // last build in which a series of this value changed or a connection of it was recent
	dead       bool      // reclaimed: groups using it are gone
	permanent  bool      // "other" and "unknown": never reclaimed
}

// labelSet gives raw values label values of their own up to max; later
// values share "other". A value whose series saw no activity for
// reclaimAfter gives its place to a newcomer, so that a fleet whose clients
// come and go (containers with fresh addresses) keeps labelling the clients
// that are there now instead of the first ones it ever saw. The series of a
// reclaimed value disappear; if it comes back it starts from zero, which
// Prometheus reads as a counter reset.
type labelSet struct {
	max          int
	reclaimAfter time.Duration
	slots        map[string]*slot
	labels       map[string]bool // label values in use, to keep them unique
	other        *slot

	// Reclaimable slots, found once per build on the first miss.
	idle      []*slot
	idleBuild uint64
}

func newLabelSet(max int, reclaimAfter time.Duration) *labelSet {
	s := &labelSet{
		max:          max,
		reclaimAfter: reclaimAfter,
		slots:        make(map[string]*slot),
		labels:       map[string]bool{otherLabel + "\x00": true},
	}
	s.other = &slot{label: otherLabel, permanent: true}
	return s
}

// get returns the slot of raw, creating it (or reclaiming an idle one)
// when there is room, else the "other" slot. A reclaimed slot is returned
// as evicted so the caller can drop its series. mk makes the label values
// of a new raw value.
func (s *labelSet) get(raw string, now time.Time, build uint64, mk func(raw string) (string, string)) (sl, evicted *slot) {
	if sl := s.slots[raw]; sl != nil {
		return sl, nil
	}
	if len(s.slots) >= s.max {
		evicted = s.reclaim(now, build)
		if evicted == nil {
			return s.other, nil
		}
	}
	l1, l2 := mk(raw)
	l1 = s.unique(l1, l2, raw)
	sl = &slot{raw: raw, label: l1, label2: l2, lastActive: now}
	s.slots[raw] = sl
	s.labels[l1+"\x00"+l2] = true
	return sl, evicted
}

// add registers a permanent slot (such as "unknown") outside the cap.
func (s *labelSet) add(raw, label string) *slot {
	sl := &slot{raw: raw, label: label, permanent: true}
	s.labels[label+"\x00"] = true
	s.slots[raw] = sl
	s.max++
	return sl
}

func (s *labelSet) unique(l1, l2, raw string) string {
	if !s.labels[l1+"\x00"+l2] {
		return l1
	}
	base := l1 + "#" + shortHash(raw)
	l1 = base
	for i := 2; s.labels[l1+"\x00"+l2]; i++ {
		l1 = base + "-" + strconv.Itoa(i)
	}
	return l1
}

func (s *labelSet) reclaim(now time.Time, build uint64) *slot {
	if s.idleBuild != build {
		s.idleBuild = build
		s.idle = s.idle[:0]
		for _, sl := range s.slots {
			if !sl.permanent && now.Sub(sl.lastActive) >= s.reclaimAfter {
				s.idle = append(s.idle, sl)
			}
		}
		// Oldest first; ties by value so that reclaiming is deterministic.
		slices.SortFunc(s.idle, func(a, b *slot) int {
			if c := a.lastActive.Compare(b.lastActive); c != 0 {
				return c
			}
			return strings.Compare(a.raw, b.raw)
		})
	}
	for len(s.idle) > 0 {
		sl := s.idle[0]
		s.idle = s.idle[1:]
		if now.Sub(sl.lastActive) < s.reclaimAfter || s.slots[sl.raw] != sl {
			continue // active again in this build
		}
		delete(s.slots, sl.raw)
		delete(s.labels, sl.label+"\x00"+sl.label2)
		sl.dead = true
		return sl
	}
	return nil
}

// labelValue makes s usable as a label value: valid UTF-8 and at most max
// bytes. A value that had to change gets a hash of the original appended,
// so that two values never collapse into one series.
func labelValue(s string, max int) string {
	if utf8.ValidString(s) && len(s) <= max {
		return s
	}
	h := shortHash(s)
	v := strings.ToValidUTF8(s, "\uFFFD")
	if len(v) > max-len(h)-4 {
		v = v[:max-len(h)-4]
		for len(v) > 0 && !utf8.ValidString(v) {
			v = v[:len(v)-1] // cut inside a rune
		}
		v += "…"
	}
	return v + "#" + h
}

func shortHash(s string) string {
	h := fnv.New32a()
	h.Write([]byte(s))
	return strconv.FormatUint(uint64(h.Sum32())|1<<32, 16)[1:]
}

// clientIP drops the port of a report's "ip:port": the ephemeral port would
// make a series per connection.
func clientIP(addr string) string {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap.Addr().Unmap().String()
	}
	if i := strings.LastIndexByte(addr, ':'); i > 0 {
		return strings.Trim(addr[:i], "[]")
	}
	return addr
}

// unknownCode is the code label of errors a report counts without
// breaking them down by code.
const unknownCode = "unknown"

// codeSet gives ERROR code names label values: each its own, up to
// maxErrorCodes (of which at most maxUnnamedErrorCodes for the codes decode
// has no name for), then "other". Codes are few and never reclaimed: once
// a code has a label value it keeps it, and one beyond the cap never gets
// one, so a connection's errors of one code always count in the same
// series.
type codeSet struct {
	index   map[string]int // raw name → index in labels (names beyond the cap are not kept)
	labels  []string
	own     int      // label values of their own (all but "other")
	unnamed int      // of which for codes decode has no name for
	fresh   []string // scratch for learn
}

// learn gives the names of m that have none yet their label values, in
// sorted order so that which ones share "other" under a full cap does not
// depend on map order.
func (s *codeSet) learn(m map[string]uint64) {
	fresh := s.fresh[:0]
	for name := range m {
		if _, ok := s.index[name]; !ok {
			fresh = append(fresh, name)
		}
	}
	if len(fresh) == 0 {
		return
	}
	slices.Sort(fresh)
	for _, name := range fresh {
		s.get(name)
	}
	clear(fresh)
	s.fresh = fresh[:0]
}

// get returns the index of name's label value, giving it one if it has none.
func (s *codeSet) get(name string) int {
	if i, ok := s.index[name]; ok {
		return i
	}
	l := labelValue(name, maxCodeLabel)
	unnamed := strings.HasPrefix(name, "ERROR_0x") || l != name
	var i int
	switch {
	case l == otherLabel:
		i = s.other()
	case s.own >= maxErrorCodes, unnamed && s.unnamed >= maxUnnamedErrorCodes:
		// Not remembered: the names beyond the cap are unbounded.
		return s.other()
	default:
		if unnamed {
			s.unnamed++
		}
		s.own++
		i = len(s.labels)
		s.labels = append(s.labels, l)
	}
	s.index[name] = i
	return i
}

// other returns the index of "other" (outside the cap).
func (s *codeSet) other() int {
	if i, ok := s.index[otherLabel]; ok && s.labels[i] == otherLabel {
		return i
	}
	s.labels = append(s.labels, otherLabel)
	s.index[otherLabel] = len(s.labels) - 1
	return len(s.labels) - 1
}
