package capture

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
)

func TestPermissionHint(t *testing.T) {
	wrapped := fmt.Errorf("capture: opening an AF_PACKET socket on lo: %w", syscall.EPERM)
	if h := PermissionHint(wrapped); !strings.Contains(h, "sudo") || !strings.Contains(h, "setcap cap_net_raw,cap_net_admin=eip") || strings.Contains(h, "\n") {
		t.Errorf("hint for EPERM: %q", h)
	}
	if h := PermissionHint(fmt.Errorf("x: %w", syscall.EACCES)); h == "" {
		t.Error("no hint for EACCES")
	}
	if h := PermissionHint(errors.New("capture: interface \"eth9\": no such network interface")); h != "" {
		t.Errorf("hint for another error: %q", h)
	}
}

func TestDropPrivilegesWithoutSudo(t *testing.T) {
	// Not under sudo (or not root): nothing to do, nothing done.
	t.Setenv("SUDO_UID", "")
	t.Setenv("SUDO_GID", "")
	uid := os.Geteuid()
	if err := DropPrivileges(""); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != uid {
		t.Fatalf("euid changed from %d to %d", uid, os.Geteuid())
	}
	if err := DropPrivileges("no-such-user-cqlsniff"); err == nil {
		t.Error("unknown user accepted")
	}
}
