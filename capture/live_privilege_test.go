//go:build linux

package capture

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The privilege tests run the test binary again as a child process, so
// that what they change (the process's user) does not leak into the other
// tests. The child's part is selected by an environment variable.
const childEnv = "CQLSNIFF_LIVE_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(m.Run())
	case "unprivileged":
		os.Exit(childUnprivileged())
	case "drop":
		os.Exit(childDrop())
	}
	os.Exit(3)
}

// childUnprivileged opens a capture as a user without privileges.
func childUnprivileged() int {
	_, err := OpenLive(LiveConfig{Interface: "lo", Ports: []uint16{9042}})
	if err == nil {
		fmt.Println("opened without privilege")
		return 1
	}
	if !errors.Is(err, syscall.EPERM) {
		fmt.Printf("error does not wrap EPERM: %v\n", err)
		return 1
	}
	fmt.Printf("%v\n%s\n", err, PermissionHint(err))
	return 0
}

// childDrop opens a capture as root under (pretended) sudo, drops to the
// sudo user, then creates the dump, captures an exchange and checks it
// cannot become root again.
func childDrop() int {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return 1
	}
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	path := os.Getenv("CQLSNIFF_DUMP")
	dump := NewDumpFile(path)
	src, err := OpenLive(LiveConfig{Interface: "lo", Ports: []uint16{port}, Dump: dump})
	if err != nil {
		fmt.Println(err)
		return 1
	}
	if err := DropPrivileges(""); err != nil {
		fmt.Println(err)
		return 1
	}
	if os.Geteuid() == 0 || syscall.Setuid(0) == nil {
		fmt.Println("still root after DropPrivileges")
		return 1
	}
	if groups, err := os.Getgroups(); err != nil || slices.Contains(groups, 0) || os.Getegid() == 0 {
		fmt.Printf("still in group 0: egid %d, groups %v (%v)\n", os.Getegid(), groups, err)
		return 1
	}
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		fmt.Println(err)
		return 1
	}
	c.Write([]byte("after the drop"))
	c.Close()
	var p Packet
	got := 0
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end) && got == 0; {
		if err := src.Next(&p); err == nil && len(p.Payload) > 0 {
			got++
		}
	}
	// The kernel's counters are still readable without privilege.
	if _, _, err := src.tp.SocketStats(); err != nil {
		fmt.Printf("kernel statistics after dropping privileges: %v\n", err)
		return 1
	}
	src.Close()
	dump.Close()
	if got == 0 {
		fmt.Println("no data packet captured after dropping privileges")
		return 1
	}
	fmt.Printf("uid %d\n", os.Geteuid())
	return 0
}

// runChild runs this test binary as a child doing part, with the given
// credentials (nil: as this process).
func runChild(t *testing.T, part string, cred *syscall.Credential, env ...string) string {
	t.Helper()
	// The build directory of go test is private to root: the child
	// runs from a copy anyone may execute.
	dir, err := os.MkdirTemp("", "cqlsniff-live")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o777)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "live.test")
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(append(os.Environ(), childEnv+"="+part), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child %s: %v\n%s", part, err, out)
	}
	return string(out)
}

const nobody = 65534

func TestLiveWithoutPrivilege(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to start a child as another user")
	}
	openLive(t, LiveConfig{Interface: "lo"}).Close() // skips where live capture is unavailable anyway
	out := runChild(t, "unprivileged", &syscall.Credential{Uid: nobody, Gid: nobody})
	if !strings.Contains(out, "operation not permitted") || !strings.Contains(out, "setcap") {
		t.Errorf("child said:\n%s", out)
	}
}

func TestLiveDropPrivileges(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	openLive(t, LiveConfig{Interface: "lo"}).Close()
	dir, err := os.MkdirTemp("", "cqlsniff-dump")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o777)
	path := filepath.Join(dir, "dropped.pcap")
	out := runChild(t, "drop", nil, "SUDO_UID="+strconv.Itoa(nobody), "SUDO_GID="+strconv.Itoa(nobody), "CQLSNIFF_DUMP="+path)
	if !strings.Contains(out, fmt.Sprintf("uid %d", nobody)) {
		t.Errorf("child said:\n%s", out)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != nobody || st.Gid != nobody {
		t.Errorf("dump file owned by %d:%d, want the sudo user %d:%d", st.Uid, st.Gid, nobody, nobody)
	}
	f, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var pkts []Packet
	collectAll(f, &pkts)
	if len(pkts) == 0 {
		t.Error("the dump holds no packet")
	}
}
