package sockcount

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
)

func TestExplain(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{ErrNoPorts, "no CQL port"},
		{fmt.Errorf("%w: %w", ErrPermission, syscall.EPERM), "need root (or CAP_BPF and CAP_PERFMON)"},
		{fmt.Errorf("load: %w", syscall.EPERM), "need root"},
		{fmt.Errorf("%w: %w", ErrNoBTF, os.ErrNotExist), "BTF"},
		{ErrNoTracefs, "mount -t tracefs nodev /sys/kernel/tracing"},
		{ErrNoTracepoints, "CONFIG_FTRACE_SYSCALLS"},
		{ErrUnsupportedOS, "need Linux"},
		{errors.New("something else\nwith a second line"), "syscall counts unavailable: something else;"},
	} {
		got := Explain(c.err)
		if !strings.Contains(got, c.want) || strings.Contains(got, "\n") {
			t.Errorf("Explain(%v) = %q, want one line containing %q", c.err, got, c.want)
		}
		if c.err != nil && !strings.HasSuffix(got, wireOnly) {
			t.Errorf("Explain(%v) = %q does not say the analysis goes on from the wire", c.err, got)
		}
	}
}
