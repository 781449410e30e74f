package sockcount

import (
	"fmt"
	"net"
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
	if os.Getenv("SOCKCOUNT_TEST_UNPRIVILEGED") == "1" {
		_, err := Open(Config{Ports: []uint16{9042}})
		fmt.Printf("explain: %s\n", Explain(err))
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to user nobody")
	}
	// The test binary sits in a directory only root can enter: copy it where nobody can run it.
	dir, err := os.MkdirTemp("", "sockcount-unprivileged")
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
	exe := filepath.Join(dir, "sockcount.test")
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestOpenUnprivileged$", "-test.count=1")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SOCKCOUNT_TEST_UNPRIVILEGED=1")
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

// TestReadAfterDroppingPrivileges opens the Tracer as root, then switches the process to user nobody
// (as cqlsniff does once its capture socket is open) and expects Read, and the counting, to go on.
func TestReadAfterDroppingPrivileges(t *testing.T) {
	if os.Getenv("SYSCALLS_TEST_DROP") == "1" {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			fmt.Println("listen:", err)
			return
		}
		tr, err := Open(Config{Ports: []uint16{uint16(ln.Addr().(*net.TCPAddr).Port)}})
		if err != nil {
			fmt.Println("open:", Explain(err))
			return
		}
		if err := syscall.Setgid(65534); err != nil {
			fmt.Println("setgid:", err)
			return
		}
		if err := syscall.Setuid(65534); err != nil {
			fmt.Println("setuid:", err)
			return
		}
		go func() {
			if c, err := ln.Accept(); err == nil {
				c.Read(make([]byte, 16))
			}
		}()
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			fmt.Println("dial:", err)
			return
		}
		c.Write([]byte("hello"))
		counts := make(map[Key]Counts)
		err = tr.Read(counts)
		fmt.Printf("uid %d: read: %v\n", os.Getuid(), err)
		for k, v := range counts {
			if int(k.Local.Port) != ln.Addr().(*net.TCPAddr).Port {
				fmt.Printf("client sends=%d send_bytes=%d\n", v.Sends, v.SendBytes)
			}
		}
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestReadAfterDroppingPrivileges$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SYSCALLS_TEST_DROP=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("%s", strings.TrimSpace(string(out)))
	if strings.Contains(string(out), "open: ") {
		t.Skip(strings.TrimSpace(string(out)))
	}
	if !strings.Contains(string(out), "uid 65534: read: <nil>") || !strings.Contains(string(out), "client sends=1 send_bytes=5") {
		t.Errorf("after dropping privileges, Read or the counting stopped working:\n%s", out)
	}
}
