package syscalls

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestOpenUnprivileged runs Open as user nobody in a child process: it must fail with an error that
// Explain attributes to privileges.
func TestOpenUnprivileged(t *testing.T) {
	if os.Getenv("SYSCALLS_TEST_UNPRIVILEGED") == "1" {
		_, err := Open(Config{Ports: []uint16{9042}})
		fmt.Printf("explain: %s\n", Explain(err))
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to user nobody")
	}
	// The test binary sits in a directory only root can enter: copy it where nobody can run it.
	dir, err := os.MkdirTemp("", "syscalls-unprivileged")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "syscalls.test")
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestOpenUnprivileged$", "-test.count=1")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SYSCALLS_TEST_UNPRIVILEGED=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("as nobody: %s", strings.TrimSpace(string(out)))
	if !strings.Contains(string(out), "explain: syscall counts need root") {
		t.Errorf("unprivileged Open was not explained as a privilege problem:\n%s", out)
	}
}
