package analyze

import "testing"

func TestFingerprint(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"plain", "SELECT * FROM system.local WHERE key='local'", "SELECT * FROM system.local WHERE key=?"},
		{"whitespace", "  SELECT *\n\tFROM  t  ", "SELECT * FROM t"},
		{"numbers", "SELECT * FROM t WHERE a = 42 AND b > -3.5e2 LIMIT 10", "SELECT * FROM t WHERE a = ? AND b > ? LIMIT ?"},
		{"identifier digits kept", "SELECT c1 FROM t2", "SELECT c1 FROM t2"},
		{"in list", "SELECT * FROM t WHERE id IN (1, 2, 3,4)", "SELECT * FROM t WHERE id IN (?+)"},
		{"insert values", "INSERT INTO ks.t (a, b, c) VALUES (1, 'x', 0xCAFE)", "INSERT INTO ks.t (a, b, c) VALUES (?+)"},
		{"uuid", "SELECT * FROM t WHERE id = 550e8400-e29b-41d4-a716-446655440000", "SELECT * FROM t WHERE id = ?"},
		{"uuid digit first", "UPDATE t SET x = 1 WHERE id = 123e4567-e89b-12d3-a456-426614174000", "UPDATE t SET x = ? WHERE id = ?"},
		{"escaped quote", "INSERT INTO t (a) VALUES ('it''s')", "INSERT INTO t (a) VALUES (?)"},
		{"password", "CREATE ROLE bob WITH PASSWORD = 'hunter2' AND LOGIN = true", "CREATE ROLE bob WITH PASSWORD = ? AND LOGIN = true"},
		{"quoted identifier", `USE "Test"`, `USE "Test"`},
		{"comments", "SELECT a -- the a\nFROM t /* x */ WHERE b = 1", "SELECT a FROM t WHERE b = ?"},
		{"dollar string", "INSERT INTO t (a) VALUES ($$x y$$)", "INSERT INTO t (a) VALUES (?)"},
		{"bind markers", "SELECT * FROM t WHERE a = ? AND b = :name", "SELECT * FROM t WHERE a = ? AND b = :name"},
		{"minus operator", "UPDATE t SET c = c - 1 WHERE k = 2", "UPDATE t SET c = c - ? WHERE k = ?"},
		{"map literal", "CREATE KEYSPACE k WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}", "CREATE KEYSPACE k WITH replication = {?: ?, ?: ?}"},
		{"set literal", "UPDATE t SET s = {1, 2, 3} WHERE k = 4", "UPDATE t SET s = {?+} WHERE k = ?"},
		{"unterminated", "SELECT 'abc", "SELECT ?"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := string(Fingerprint(nil, []byte(c.in))); got != c.want {
				t.Errorf("Fingerprint(%q)\n got %q\nwant %q", c.in, got, c.want)
			}
		})
	}
}

func TestFingerprintNoAlloc(t *testing.T) {
	q := []byte("INSERT INTO ks.t (a, b, c) VALUES (1, 'x', 0xCAFE) USING TTL 3600")
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { buf = Fingerprint(buf[:0], q) }); n != 0 {
		t.Fatalf("Fingerprint allocates %v times", n)
	}
}

func FuzzFingerprint(f *testing.F) {
	f.Add([]byte("SELECT * FROM t WHERE a IN (1, 2) AND b = 'x'"))
	f.Add([]byte("/* unterminated"))
	f.Add([]byte("-1, -2 $$"))
	f.Fuzz(func(t *testing.T, q []byte) {
		out := Fingerprint(nil, q)
		if len(out) > len(q)+1 {
			t.Fatalf("fingerprint longer than input: %q -> %q", q, out)
		}
	})
}

// BenchmarkFingerprint: statements as applications that build query
// strings send them (a UUID, a string, a blob and a timestamp inline), and
// one with bind markers only.
func BenchmarkFingerprint(b *testing.B) {
	for _, q := range []string{
		"SELECT id, name, value, updated FROM ks.tbl WHERE id = 6f1c0e5a-2b7d-4c1e-9a3f-0d2e4b6c8a10",
		"INSERT INTO ks.tbl (id, name, value, updated) VALUES (6f1c0e5a-2b7d-4c1e-9a3f-0d2e4b6c8a10, 'user-004211', 0x9f3a1c7e5b2d4f6a8c0e, 1764720000000)",
		"SELECT id, name, value, updated FROM ks.tbl WHERE id = ? AND name IN ? LIMIT ?",
	} {
		b.Run(q[:6], func(b *testing.B) {
			var dst []byte
			b.SetBytes(int64(len(q)))
			for b.Loop() {
				dst = Fingerprint(dst[:0], []byte(q))
			}
		})
	}
}
