// Package kubernetes holds the manifests that run cqlsniff on every node of
// a Kubernetes cluster. No cluster runs where the tests do, and schema
// downloads are not reachable, so the test decodes each document strictly
// into the Kubernetes and Prometheus-operator Go types (an unknown or
// misspelt field is an error) and checks what the deployment relies on.
package kubernetes

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// The capabilities of a live capture with syscall counts: the same as the
// systemd unit's (checked against it below).
var wantCaps = []corev1.Capability{"NET_RAW", "NET_ADMIN", "BPF", "PERFMON"}

const (
	namespace = "cqlsniff"
	imageRepo = "ghcr.io/cqlsniff/cqlsniff"
)

// kustomization is the part of kustomize's type these manifests use; the
// rest would be an unknown field.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
}

type manifests struct {
	namespaces      []corev1.Namespace
	daemonSets      []appsv1.DaemonSet
	services        []corev1.Service
	serviceMonitors []monitoringv1.ServiceMonitor
	podMonitors     []monitoringv1.PodMonitor
	kustomizations  []kustomization
}

// load decodes every YAML document of every file under the directory,
// strictly, by kind.
func load(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{}
	var files []string
	filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".yaml") {
			files = append(files, path)
		}
		return err
	})
	if len(files) == 0 {
		t.Fatal("no manifests")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
			var head struct{ APIVersion, Kind string }
			if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
				t.Errorf("%s document %d: %v", f, i, err)
				continue
			}
			if head.Kind == "" {
				if strings.TrimSpace(regexp.MustCompile(`(?m)#.*$`).ReplaceAllString(doc, "")) != "" {
					t.Errorf("%s document %d has no kind", f, i)
				}
				continue
			}
			var (
				obj  any
				want string
			)
			switch head.Kind {
			case "Namespace":
				m.namespaces = append(m.namespaces, corev1.Namespace{})
				obj, want = &m.namespaces[len(m.namespaces)-1], "v1"
			case "DaemonSet":
				m.daemonSets = append(m.daemonSets, appsv1.DaemonSet{})
				obj, want = &m.daemonSets[len(m.daemonSets)-1], "apps/v1"
			case "Service":
				m.services = append(m.services, corev1.Service{})
				obj, want = &m.services[len(m.services)-1], "v1"
			case "ServiceMonitor":
				m.serviceMonitors = append(m.serviceMonitors, monitoringv1.ServiceMonitor{})
				obj, want = &m.serviceMonitors[len(m.serviceMonitors)-1], "monitoring.coreos.com/v1"
			case "PodMonitor":
				m.podMonitors = append(m.podMonitors, monitoringv1.PodMonitor{})
				obj, want = &m.podMonitors[len(m.podMonitors)-1], "monitoring.coreos.com/v1"
			case "Kustomization":
				m.kustomizations = append(m.kustomizations, kustomization{})
				obj, want = &m.kustomizations[len(m.kustomizations)-1], "kustomize.config.k8s.io/v1beta1"
			default:
				t.Errorf("%s: kind %s is not checked: add it to the test", f, head.Kind)
				continue
			}
			if head.APIVersion != want {
				t.Errorf("%s: %s has apiVersion %q, want %q", f, head.Kind, head.APIVersion, want)
			}
			if err := decodeStrict([]byte(doc), obj); err != nil {
				t.Errorf("%s: %s: %v", f, head.Kind, err)
			}
		}
	}
	return m
}

// decodeStrict decodes a YAML document as the API server would: unknown
// fields, duplicate keys and field names in the wrong case are errors.
// (yaml.UnmarshalStrict alone is not enough: it decodes with encoding/json,
// which matches field names case-insensitively, so hostNetWork would pass.)
func decodeStrict(doc []byte, obj any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strictErrs, err := kjson.UnmarshalStrict(j, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strictErrs...)
}

func TestManifests(t *testing.T) {
	m := load(t)
	if len(m.namespaces) != 1 || len(m.daemonSets) != 1 || len(m.services) != 1 || len(m.serviceMonitors) != 1 || len(m.podMonitors) != 1 {
		t.Fatalf("want one Namespace, DaemonSet, Service, ServiceMonitor and PodMonitor; have %d, %d, %d, %d, %d",
			len(m.namespaces), len(m.daemonSets), len(m.services), len(m.serviceMonitors), len(m.podMonitors))
	}
	ns := m.namespaces[0]
	if ns.Name != namespace {
		t.Errorf("namespace %q, want %q", ns.Name, namespace)
	}
	// Host network is forbidden below the privileged Pod Security level.
	if ns.Labels["pod-security.kubernetes.io/enforce"] != "privileged" {
		t.Errorf("namespace %s does not allow host-network pods (pod-security.kubernetes.io/enforce: privileged)", ns.Name)
	}
	for _, o := range []metav1.ObjectMeta{m.daemonSets[0].ObjectMeta, m.services[0].ObjectMeta, m.serviceMonitors[0].ObjectMeta, m.podMonitors[0].ObjectMeta} {
		if o.Namespace != namespace {
			t.Errorf("%s is in namespace %q, want %q", o.Name, o.Namespace, namespace)
		}
	}

	ds := m.daemonSets[0]
	pod := ds.Spec.Template
	sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
		t.Errorf("the DaemonSet's selector %v (%v) does not select its pods %v", ds.Spec.Selector, err, pod.Labels)
	}
	spec := pod.Spec
	if !spec.HostNetwork {
		t.Error("hostNetwork is off: the capture would see the pod's interface, not the node's")
	}
	if spec.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
		t.Errorf("dnsPolicy %q, want %q with the host network", spec.DNSPolicy, corev1.DNSClusterFirstWithHostNet)
	}
	if spec.HostPID || spec.HostIPC {
		t.Error("hostPID or hostIPC: not needed")
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Error("the pod mounts a service account token it never uses")
	}
	if !slices.ContainsFunc(spec.Tolerations, func(tl corev1.Toleration) bool {
		return tl.Key == "" && tl.Operator == corev1.TolerationOpExists && tl.Effect == ""
	}) {
		t.Error("no toleration of every taint: tainted (database) nodes would go without cqlsniff")
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]
	repo, tag, _ := strings.Cut(c.Image, ":")
	if repo != imageRepo || tag == "" || tag == "latest" || !regexp.MustCompile(`^v\d+\.\d+\.\d+`).MatchString(tag) {
		t.Errorf("image %q, want %s:vX.Y.Z (a release, not latest)", c.Image, imageRepo)
	}

	sc := c.SecurityContext
	if sc == nil || sc.Capabilities == nil {
		t.Fatal("the container has no securityContext with capabilities")
	}
	if sc.Privileged == nil || *sc.Privileged {
		t.Error("privileged is not false")
	}
	if spec.SecurityContext != nil && spec.SecurityContext.RunAsNonRoot != nil && *spec.SecurityContext.RunAsNonRoot && (sc.RunAsNonRoot == nil || *sc.RunAsNonRoot) {
		t.Error("runAsNonRoot: the added capabilities would not reach the process (see README.md)")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("allowPrivilegeEscalation is not false")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("the root file system is writable")
	}
	if !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("capabilities dropped %v, want [ALL]", sc.Capabilities.Drop)
	}
	if !slices.Equal(sorted(sc.Capabilities.Add), sorted(wantCaps)) {
		t.Errorf("capabilities added %v, want %v", sc.Capabilities.Add, wantCaps)
	}
	unit, err := os.ReadFile("../systemd/cqlsniff.service")
	if err != nil {
		t.Fatal(err)
	}
	if mm := regexp.MustCompile(`(?m)^CapabilityBoundingSet=(.*)$`).FindSubmatch(unit); mm == nil {
		t.Error("the systemd unit has no CapabilityBoundingSet")
	} else {
		var unitCaps []corev1.Capability
		for _, f := range strings.Fields(string(mm[1])) {
			unitCaps = append(unitCaps, corev1.Capability(strings.TrimPrefix(f, "CAP_")))
		}
		if !slices.Equal(sorted(unitCaps), sorted(wantCaps)) {
			t.Errorf("the systemd unit has %v, the DaemonSet %v", unitCaps, wantCaps)
		}
	}

	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okReq := c.Resources.Requests[r]
		lim, okLim := c.Resources.Limits[r]
		if !okReq || !okLim || req.Cmp(lim) > 0 {
			t.Errorf("%s: request %v, limit %v: want both, request ≤ limit", r, req.String(), lim.String())
		}
	}
	// The systemd unit's MemoryMax.
	if lim := c.Resources.Limits[corev1.ResourceMemory]; lim.Cmp(resource.MustParse("1Gi")) > 0 {
		t.Errorf("memory limit %v, more than the 1 GiB the analyzer is bounded by", lim.String())
	}

	// The metrics port: the one --metrics listens on, the container port
	// named metrics, the probe's, the Service's and the monitors'.
	metricsPort := containerPort(t, c, "metrics")
	if addr := flagValue(c.Args, "--metrics"); addr != ":"+strconv.Itoa(int(metricsPort)) {
		t.Errorf("--metrics %q, the container's metrics port is %d", addr, metricsPort)
	}
	if flagValue(c.Args, "-i") != "any" {
		t.Errorf("-i %q, want any (every interface of the node)", flagValue(c.Args, "-i"))
	}
	p := c.LivenessProbe
	switch {
	case p == nil:
		t.Error("no liveness probe")
	case p.TCPSocket != nil:
		checkPort(t, "liveness probe", c, p.TCPSocket.Port, metricsPort)
	case p.HTTPGet != nil:
		checkPort(t, "liveness probe", c, p.HTTPGet.Port, metricsPort)
		if p.HTTPGet.Scheme != corev1.URISchemeHTTPS {
			t.Error("the liveness probe's GET is not HTTPS, the metrics endpoint is")
		}
	default:
		t.Error("the liveness probe does not check the metrics endpoint")
	}

	// --web.config.file is in a read-only volume from a Secret.
	webConfig := flagValue(c.Args, "--web.config.file")
	if webConfig == "" {
		t.Error("no --web.config.file: the metrics endpoint would be open to anyone")
	} else {
		var vol string
		for _, vm := range c.VolumeMounts {
			if strings.HasPrefix(webConfig, strings.TrimSuffix(vm.MountPath, "/")+"/") && vm.ReadOnly {
				vol = vm.Name
			}
		}
		i := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == vol })
		if vol == "" || i < 0 || spec.Volumes[i].Secret == nil {
			t.Errorf("--web.config.file %s is not in a read-only Secret volume", webConfig)
		} else if mode := spec.Volumes[i].Secret.DefaultMode; mode == nil || *mode&0o077 != 0 {
			t.Errorf("the web configuration's Secret volume is readable by others (defaultMode %o)", *mode)
		}
	}

	// The Service selects the pods and names the metrics port.
	svc := m.services[0]
	if sel := labels.SelectorFromSet(svc.Spec.Selector); len(svc.Spec.Selector) == 0 || !sel.Matches(labels.Set(pod.Labels)) {
		t.Errorf("the Service's selector %v does not select the pods %v", svc.Spec.Selector, pod.Labels)
	}
	svcPorts := map[string]corev1.ServicePort{}
	for _, sp := range svc.Spec.Ports {
		svcPorts[sp.Name] = sp
	}
	if sp, ok := svcPorts["metrics"]; !ok {
		t.Error("the Service has no port named metrics")
	} else {
		checkPort(t, "the Service's targetPort", c, sp.TargetPort, metricsPort)
		if sp.Port != metricsPort {
			t.Errorf("the Service's port %d, the container's %d", sp.Port, metricsPort)
		}
	}

	// The ServiceMonitor selects the Service and scrapes a port it has,
	// over TLS with basic auth.
	sm := m.serviceMonitors[0]
	smSel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil || smSel.Empty() || !smSel.Matches(labels.Set(svc.Labels)) {
		t.Errorf("the ServiceMonitor's selector %v does not select the Service (labels %v)", sm.Spec.Selector, svc.Labels)
	}
	if len(sm.Spec.NamespaceSelector.MatchNames) > 0 && !slices.Contains(sm.Spec.NamespaceSelector.MatchNames, svc.Namespace) {
		t.Errorf("the ServiceMonitor looks in %v, the Service is in %s", sm.Spec.NamespaceSelector.MatchNames, svc.Namespace)
	}
	if len(sm.Spec.Endpoints) != 1 {
		t.Fatalf("the ServiceMonitor has %d endpoints, want 1", len(sm.Spec.Endpoints))
	}
	ep := sm.Spec.Endpoints[0]
	if _, ok := svcPorts[ep.Port]; !ok {
		t.Errorf("the ServiceMonitor scrapes port %q, which the Service does not have", ep.Port)
	}
	var smTLS *monitoringv1.SafeTLSConfig
	if ep.TLSConfig != nil {
		smTLS = &ep.TLSConfig.SafeTLSConfig
	}
	checkScrape(t, "ServiceMonitor", ep.Path, ep.Scheme, smTLS, ep.BasicAuth)

	// The PodMonitor (the alternative) selects the pods and scrapes their
	// metrics port.
	pm := m.podMonitors[0]
	pmSel, err := metav1.LabelSelectorAsSelector(&pm.Spec.Selector)
	if err != nil || pmSel.Empty() || !pmSel.Matches(labels.Set(pod.Labels)) {
		t.Errorf("the PodMonitor's selector %v does not select the pods %v", pm.Spec.Selector, pod.Labels)
	}
	if len(pm.Spec.PodMetricsEndpoints) != 1 {
		t.Fatalf("the PodMonitor has %d endpoints, want 1", len(pm.Spec.PodMetricsEndpoints))
	}
	pep := pm.Spec.PodMetricsEndpoints[0]
	if pep.Port == nil || containerPort(t, c, *pep.Port) != metricsPort {
		t.Errorf("the PodMonitor scrapes port %v, the container's metrics port is named metrics", pep.Port)
	}
	checkScrape(t, "PodMonitor", pep.Path, pep.Scheme, pep.TLSConfig, pep.BasicAuth)

	// kubectl apply -k: every file it names exists, and only one monitor.
	if len(m.kustomizations) != 1 {
		t.Fatalf("%d kustomizations, want 1", len(m.kustomizations))
	}
	res := m.kustomizations[0].Resources
	for _, r := range res {
		if _, err := os.Stat(r); err != nil {
			t.Errorf("kustomization.yaml: %v", err)
		}
	}
	if slices.Contains(res, "servicemonitor.yaml") == slices.ContainsFunc(res, func(r string) bool { return strings.Contains(r, "podmonitor") }) {
		t.Errorf("kustomization.yaml must apply one of the ServiceMonitor and the PodMonitor: %v", res)
	}
}

// checkScrape checks a monitor's endpoint: /metrics, HTTPS with a CA and
// the server name of the certificate, basic auth from a Secret.
func checkScrape(t *testing.T, what, path string, scheme *monitoringv1.Scheme, tc *monitoringv1.SafeTLSConfig, ba *monitoringv1.BasicAuth) {
	t.Helper()
	if path != "/metrics" {
		t.Errorf("%s: path %q, want /metrics", what, path)
	}
	// The CRD's enum (http, https, any case): the Go types do not check it.
	if scheme == nil || !strings.EqualFold(string(*scheme), "https") {
		t.Errorf("%s: scheme %v, want https", what, scheme)
	}
	if tc == nil || tc.CA.Secret == nil || tc.ServerName == nil || *tc.ServerName == "" || (tc.InsecureSkipVerify != nil && *tc.InsecureSkipVerify) {
		t.Errorf("%s: TLS without a CA from a Secret and the certificate's server name (or verification skipped)", what)
	}
	if ba == nil || ba.Username.Name == "" || ba.Password.Name == "" {
		t.Errorf("%s: no basic auth from a Secret", what)
	}
}

// containerPort is the number of c's port with that name (0 and an error
// if none).
func containerPort(t *testing.T, c corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Errorf("the container has no port named %q", name)
	return 0
}

// checkPort checks that a port reference (a name or a number) is the
// container's metrics port.
func checkPort(t *testing.T, what string, c corev1.Container, p intstr.IntOrString, want int32) {
	t.Helper()
	got := p.IntVal
	if p.Type == intstr.String {
		got = containerPort(t, c, p.StrVal)
	}
	if got != want {
		t.Errorf("%s is port %s (%d), the metrics port is %d", what, p.String(), got, want)
	}
}

// flagValue is the value after name in args ("" if absent).
func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

func sorted(cs []corev1.Capability) []corev1.Capability {
	out := slices.Clone(cs)
	slices.Sort(out)
	return out
}

// TestStrictDecoding: the decoding this test relies on does reject what a
// cluster would (a field in the wrong case, at the wrong level or of the
// wrong type, a duplicate key), so a manifest that passes is not passing
// by accident.
func TestStrictDecoding(t *testing.T) {
	b, err := os.ReadFile("daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string][2]string{
		"field in the wrong case": {"hostNetwork: true", "hostNetWork: true"},
		"wrong level":             {"      dnsPolicy:", "      containers2: []\n      dnsPolicy:"},
		"duplicate key":           {"      hostNetwork: true", "      hostNetwork: true\n      hostNetwork: false"},
		"wrong type":              {"containerPort: 9464", "containerPort: \"9464\""},
		"capability misset":       {"            capabilities:", "            capability: {}\n            capabilities:"},
	} {
		bad := bytes.Replace(b, []byte(edit[0]), []byte(edit[1]), 1)
		if bytes.Equal(bad, b) {
			t.Fatalf("%s: %q not in daemonset.yaml", name, edit[0])
		}
		var ds appsv1.DaemonSet
		if err := decodeStrict(bad, &ds); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	var sm monitoringv1.ServiceMonitor
	b, _ = os.ReadFile("servicemonitor.yaml")
	if err := decodeStrict(bytes.Replace(b, []byte("basicAuth:"), []byte("basicauth:"), 1), &sm); err == nil {
		t.Error("ServiceMonitor with basicauth: accepted")
	}
}
