package metrics

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const deployDir = "../deploy"

// dashboardExprs returns the PromQL of every panel and variable of the
// Grafana dashboard, with Grafana's variables replaced by what they mean
// when everything is selected and the rate window by window.
func dashboardExprs(tb testing.TB, window string) []string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir, "grafana", "cqlsniff.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(b, &dash); err != nil {
		tb.Fatalf("cqlsniff.json is not JSON: %v", err)
	}
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && (k == "expr" || k == "definition") {
					if strings.HasPrefix(s, "label_values(") {
						// label_values(metric{sel}, label): check the selector.
						s = strings.TrimSuffix(strings.TrimPrefix(s, "label_values("), ")")
						s = s[:strings.LastIndexByte(s, ',')]
					}
					s = strings.NewReplacer("$__rate_interval", window, "$cluster", ".*", "$instance", ".*", "$client", ".*").Replace(s)
					out = append(out, s)
					continue
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(dash)
	if len(out) == 0 {
		tb.Fatal("no queries in the dashboard")
	}
	return out
}

// TestDashboard checks that the dashboard only uses metric names the
// Collector exports, uses the headline ones, and that promtool accepts its
// queries.
func TestDashboard(t *testing.T) {
	exprs := dashboardExprs(t, "5m")
	known := make(map[string]bool)
	d := newDescs()
	for _, d := range d.all() {
		name := descName(d.String())
		known[name] = true
		for _, s := range []string{"_bucket", "_sum", "_count"} {
			known[name+s] = true
		}
	}
	// Names kept for a release under their old name: the dashboard uses the new ones.
	deprecated := map[string]string{"cqlsniff_frames_per_write": "cqlsniff_frames_per_segment"}
	used := make(map[string]bool)
	re := regexp.MustCompile(`cqlsniff_[a-z_]+`)
	for _, e := range exprs {
		for _, name := range re.FindAllString(e, -1) {
			if !known[name] {
				t.Errorf("the dashboard uses %s, which is not exported: %s", name, e)
			}
			if to, ok := deprecated[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")]; ok {
				t.Errorf("the dashboard uses %s, deprecated: use %s", name, to)
			}
			used[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")] = true
		}
	}
	for _, name := range []string{"cqlsniff_requests_total", "cqlsniff_statement_requests_total", "cqlsniff_request_duration_seconds",
		"cqlsniff_statement_duration_seconds", "cqlsniff_frames_per_segment", "cqlsniff_diagnosis_active", "cqlsniff_dropped_packets_total"} {
		if !used[name] {
			t.Errorf("the dashboard does not show %s", name)
		}
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed: queries not parsed")
	}
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, e := range exprs {
		q, _ := json.Marshal(e)
		fmt.Fprintf(&rules, "      - record: dashboard:query%d\n        expr: %s\n", i, q)
	}
	path := filepath.Join(t.TempDir(), "rules.yml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules on the dashboard's %d queries: %v\n%s", len(exprs), err, out)
	}
}

// descName pulls fqName out of a Desc's String().
func descName(s string) string {
	const key = `fqName: "`
	i := strings.Index(s, key)
	s = s[i+len(key):]
	return s[:strings.IndexByte(s, '"')]
}

// TestPrometheusConfig runs promtool check config on the fleet scrape
// configuration.
func TestPrometheusConfig(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed")
	}
	out, err := exec.Command(promtool, "check", "config", filepath.Join(deployDir, "prometheus", "prometheus.yml")).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
	t.Logf("%s", bytes.TrimSpace(out))
}

// TestSystemdUnit checks what the unit promises (no root, the capture's
// capabilities, the metrics listener) and, where systemd-analyze is
// installed, that systemd accepts every directive.
func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(deployDir, "systemd", "cqlsniff.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	for _, want := range []string{
		"\nExecStart=/usr/local/bin/cqlsniff -i any --report json --metrics :9464\n",
		"\nDynamicUser=yes\n",
		"\nAmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN CAP_BPF CAP_PERFMON\n",
		"\nCapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN CAP_BPF CAP_PERFMON\n",
		"\nNoNewPrivileges=yes\n",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("the unit lacks %q", strings.TrimSpace(want))
		}
	}
	if regexp.MustCompile(`(?m)^User=root`).MatchString(unit) {
		t.Error("the unit runs as root")
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	// verify wants the binary to exist: point ExecStart at one that does.
	path := filepath.Join(t.TempDir(), "cqlsniff.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(unit, "/usr/local/bin/cqlsniff", "/bin/true")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestSystemdWebConfigDropIn checks the drop-in that turns on TLS and basic
// auth: the files reach the dynamic user as credentials, ExecStart reads
// the web configuration from the credentials directory, and systemd
// accepts the unit with the drop-in.
func TestSystemdWebConfigDropIn(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(deployDir, "systemd", "web-config.conf"))
	if err != nil {
		t.Fatal(err)
	}
	dropIn := string(b)
	for _, want := range []string{
		"\nLoadCredential=web-config.yml:/etc/cqlsniff/web-config.yml\n",
		"\nLoadCredential=tls.crt:/etc/cqlsniff/tls.crt\n",
		"\nLoadCredential=tls.key:/etc/cqlsniff/tls.key\n",
		"\nExecStart=\n",
		"\nExecStart=/usr/local/bin/cqlsniff -i any --report json --metrics :9464 --web.config.file %d/web-config.yml\n",
	} {
		if !strings.Contains(dropIn, want) {
			t.Errorf("the drop-in lacks %q", strings.TrimSpace(want))
		}
	}
	unit, err := os.ReadFile(filepath.Join(deployDir, "systemd", "cqlsniff.service"))
	if err != nil {
		t.Fatal(err)
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "cqlsniff.service.d"), 0o755)
	fake := func(s string) []byte { return []byte(strings.ReplaceAll(s, "/usr/local/bin/cqlsniff", "/bin/true")) }
	os.WriteFile(filepath.Join(dir, "cqlsniff.service"), fake(string(unit)), 0o644)
	os.WriteFile(filepath.Join(dir, "cqlsniff.service.d", "web-config.conf"), fake(dropIn), 0o644)
	out, err := exec.Command(analyze, "verify", filepath.Join(dir, "cqlsniff.service")).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify with the drop-in: %v\n%s", err, out)
	}
}
