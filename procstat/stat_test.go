package procstat

import "testing"

// Stat lines as the kernel writes them (proc(5)); fields 3 on: state ppid
// pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime(14)
// stime(15) cutime cstime priority nice num_threads(20) itrealvalue
// starttime(22) vsize ...
func TestProcessStatLine(t *testing.T) {
	cases := []struct {
		name, line string
		want       stat
		ok         bool
	}{
		{"plain", "4242 (cassandra) S 1 4242 4242 0 -1 4194560 123 0 4 0 1500 250 7 3 20 0 87 0 9876543 4096 100 18446744073709551615\n",
			stat{comm: []byte("cassandra"), state: 'S', ticks: 1750, threads: 87, start: 9876543}, true},
		{"comm with spaces", "17 (tokio runtime w) R 1 17 17 0 -1 0 0 0 0 0 10 20 0 0 20 0 4 0 555 0",
			stat{comm: []byte("tokio runtime w"), state: 'R', ticks: 30, threads: 4, start: 555}, true},
		// A process may name itself ") S 1 2 3": only the last ')' ends comm.
		{"comm with parens", "99 (a) S 1 2 (x)) S 1 99 99 0 -1 0 0 0 0 0 7 8 0 0 20 0 1 0 42 0",
			stat{comm: []byte("a) S 1 2 (x)"), state: 'S', ticks: 15, threads: 1, start: 42}, true},
		{"empty comm", "5 () Z 1 5 5 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 1 0",
			stat{comm: []byte(""), state: 'Z', ticks: 0, threads: 1, start: 1}, true},
		{"ends at starttime", "5 (x) S 1 5 5 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 77\n",
			stat{comm: []byte("x"), state: 'S', ticks: 2, threads: 1, start: 77}, true},
		{"truncated", "5 (x) S 1 5 5 0 -1 0 0 0 0 0 1 1 0 0 20", stat{}, false},
		{"no comm", "5 x S 1 5 5 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 77 0", stat{}, false},
		{"bad utime", "5 (x) S 1 5 5 0 -1 0 0 0 0 0 -1 1 0 0 20 0 1 0 77 0", stat{}, false},
		{"two spaces", "5 (x)  S 1 5 5 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 77 0", stat{}, false},
		{"empty", "", stat{}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := parseStat([]byte(c.line))
			if ok != c.ok {
				t.Fatalf("ok %v, want %v", ok, c.ok)
			}
			if !ok {
				return
			}
			if string(got.comm) != string(c.want.comm) || got.state != c.want.state || got.ticks != c.want.ticks ||
				got.threads != c.want.threads || got.start != c.want.start {
				t.Errorf("got comm %q state %c ticks %d threads %d start %d, want %q %c %d %d %d",
					got.comm, got.state, got.ticks, got.threads, got.start,
					c.want.comm, c.want.state, c.want.ticks, c.want.threads, c.want.start)
			}
		})
	}
}

func FuzzProcessStatLine(f *testing.F) {
	f.Add([]byte("4242 (cassandra) S 1 4242 4242 0 -1 4194560 123 0 4 0 1500 250 7 3 20 0 87 0 9876543 4096\n"))
	f.Add([]byte("99 (a) S 1 2 (x)) S 1 99 99 0 -1 0 0 0 0 0 7 8 0 0 20 0 1 0 42 0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, ok := parseStat(b)
		if !ok {
			return
		}
		if len(st.comm) > len(b) {
			t.Fatalf("comm %q longer than the line", st.comm)
		}
	})
}

func TestProcessSchedstatWait(t *testing.T) {
	for _, c := range []struct {
		line string
		want uint64
		ok   bool
	}{
		{"248274865 4561527 366\n", 4561527, true},
		{"0 0 1\n", 0, true},
		{"12\n", 0, false},
		{"", 0, false},
	} {
		if got, ok := parseSchedstatWait([]byte(c.line)); got != c.want || ok != c.ok {
			t.Errorf("%q: %d %v, want %d %v", c.line, got, ok, c.want, c.ok)
		}
	}
}
