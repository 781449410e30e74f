package labcounts

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRead(t *testing.T) {
	m, err := Read(filepath.Join("..", "..", "pcaps", "gocql-1.7.0-v4-unbuffered-c64.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	var sends uint64
	for k, c := range m {
		if k.Remote.Port != 9042 || k.Local.Port == 0 || c.PID == 0 {
			t.Errorf("entry %+v %+v", k, c)
		}
		sends += c.Sends
	}
	if sends < 5000 { // 5000 requests, one write each, plus the connections' setup
		t.Errorf("%d send calls in all", sends)
	}
	dir := t.TempDir()
	for name, body := range map[string]string{"bad.json": "{", "empty.json": `{"kernel":{}}`, "port.json": `{"kernel":{"per_local_port":{"x":{}}}}`} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		if _, err := Read(p[:len(p)-len(".json")] + ".pcap"); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
