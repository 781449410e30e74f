package procstat

import "bytes"

// stat is what the sampler uses of a /proc/PID/stat or
// /proc/PID/task/TID/stat line.
type stat struct {
	comm    []byte // aliases the line
	state   byte
	ticks   uint64 // utime + stime, in clock ticks
	threads int    // num_threads
	start   uint64 // starttime: clock ticks after boot when it was created
}

// parseStat parses a stat line (proc(5)): "pid (comm) state ppid ... utime
// stime ... num_threads itrealvalue starttime ...". comm is whatever the
// process called itself, up to 15 bytes, spaces and parentheses included, so
// it ends at the line's last ')'; the fields after it never hold one.
func parseStat(b []byte) (st stat, ok bool) {
	b = bytes.TrimRight(b, "\n")
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return st, false
	}
	st.comm = b[open+1 : end]
	rest := b[end+1:]
	for field := 3; field <= 22; field++ {
		if len(rest) < 2 || rest[0] != ' ' {
			return st, false
		}
		rest = rest[1:]
		i := bytes.IndexByte(rest, ' ')
		if i < 0 {
			i = len(rest)
		}
		f := rest[:i]
		rest = rest[i:]
		var n uint64
		switch field {
		case 3:
			if len(f) != 1 {
				return st, false
			}
			st.state = f[0]
			continue
		case 14, 15, 20, 22:
			if n, ok = atou(f); !ok {
				return st, false
			}
		default:
			continue
		}
		switch field {
		case 14, 15:
			st.ticks += n
		case 20:
			st.threads = int(min(n, 1<<31))
		case 22:
			st.start = n
		}
	}
	return st, true
}

// atou parses a decimal without allocating.
func atou(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// parseSchedstatWait reads the second field of a schedstat line ("run_ns
// wait_ns timeslices"): the time the task was runnable but waiting for a
// CPU, in ns.
func parseSchedstatWait(b []byte) (uint64, bool) {
	i := 0
	for i < len(b) && b[i] != ' ' {
		i++
	}
	i++
	var v uint64
	n := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		v = v*10 + uint64(b[i]-'0')
		n++
	}
	return v, n > 0
}
