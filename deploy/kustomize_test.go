package deploy_test

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/vpnfacade/vpnfacade/internal/proctest"
)

// strictDecoder decodes YAML into the typed Kubernetes and Prometheus
// Operator objects, failing on unknown or duplicate fields.
func strictDecoder(t *testing.T) runtime.Decoder {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme,
		networkingv1.AddToScheme, monitoringv1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	return serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
}

// build runs kustomize on dir (relative to this module) and decodes every
// object it outputs strictly.
func build(t *testing.T, dir string) []runtime.Object {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resources, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	dec := strictDecoder(t)
	var objs []runtime.Object
	for _, r := range resources.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		obj, _, err := dec.Decode(y, nil, nil)
		if err != nil {
			t.Errorf("%s %s: %v", r.GetKind(), r.GetName(), err)
			continue
		}
		objs = append(objs, obj)
	}
	if t.Failed() {
		t.FailNow()
	}
	return objs
}

// all returns the objects of type T.
func all[T runtime.Object](objs []runtime.Object) []T {
	var out []T
	for _, o := range objs {
		if v, ok := o.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// named returns the object of type T called name (or, with prefix, whose
// name starts with name: generated names carry a hash suffix).
func named[T interface {
	runtime.Object
	GetName() string
}](t *testing.T, objs []runtime.Object, name string, prefix bool) T {
	t.Helper()
	for _, o := range all[T](objs) {
		if o.GetName() == name || prefix && strings.HasPrefix(o.GetName(), name+"-") {
			return o
		}
	}
	var zero T
	t.Fatalf("no %T named %s", zero, name)
	return zero
}

func selects(t *testing.T, sel *metav1.LabelSelector, l map[string]string) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatal(err)
	}
	return !s.Empty() && s.Matches(labels.Set(l))
}

// TestStrictDecodingCatchesTypos makes sure the decoder used here refuses
// what the API server would: a misspelled field.
func TestStrictDecodingCatchesTypos(t *testing.T) {
	_, _, err := strictDecoder(t).Decode([]byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replica: 3}\n"), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "replica") {
		t.Fatalf("a misspelled field decoded: %v", err)
	}
	_, _, err = strictDecoder(t).Decode([]byte("apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: x}\nspec: {endpoint: []}\n"), nil, nil)
	if err == nil {
		t.Fatal("a misspelled ServiceMonitor field decoded")
	}
}

// TestKustomizeBuilds builds the base and the try-it overlay.
func TestKustomizeBuilds(t *testing.T) {
	base := build(t, "base")
	for _, o := range base {
		if ns := o.(metav1.Object).GetNamespace(); ns != "" {
			t.Errorf("the base sets namespace %q on %s; overlays choose it", ns, o.(metav1.Object).GetName())
		}
	}
	if n := len(all[*corev1.Secret](base)); n != 0 {
		t.Errorf("the base holds %d Secrets; the Redis URL comes from a component or the user", n)
	}

	objs := build(t, ".")
	want := map[string]int{"Namespace": 1, "ServiceAccount": 1, "ConfigMap": 2, "Secret": 1, "Deployment": 2,
		"Service": 2, "PodDisruptionBudget": 1, "NetworkPolicy": 2, "ServiceMonitor": 1, "PrometheusRule": 1}
	got := map[string]int{}
	for _, o := range objs {
		kind := reflect.TypeOf(o).Elem().Name() // the Go types are named after their kinds
		got[kind]++
		if _, isNS := o.(*corev1.Namespace); !isNS && o.(metav1.Object).GetNamespace() != "vpnfacade" {
			t.Errorf("%s %s is in namespace %q, want vpnfacade", kind, o.(metav1.Object).GetName(), o.(metav1.Object).GetNamespace())
		}
	}
	for kind, n := range want {
		if got[kind] != n {
			t.Errorf("%d %s objects, want %d (all: %v)", got[kind], kind, n, got)
		}
	}
}

// TestManifestsFitTogether checks what kubectl would only find out at run
// time: selectors, ports, probes, references between objects, and the
// settings the binary reads.
func TestManifestsFitTogether(t *testing.T) {
	objs := build(t, ".")
	dep := named[*appsv1.Deployment](t, objs, "vpnfacade", false)
	pod := dep.Spec.Template
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 3 {
		t.Errorf("replicas = %v, want 3", dep.Spec.Replicas)
	}
	if !selects(t, dep.Spec.Selector, pod.Labels) {
		t.Errorf("the Deployment's selector does not select its pods")
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	if c.Image != "vpnfacade:local" {
		t.Errorf("image = %q, want the overlay's vpnfacade:local", c.Image)
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["http"] != 8080 {
		t.Fatalf("container ports = %v, want http: 8080", ports)
	}

	// Probes: readiness is the native gRPC probe on the server's port and
	// the whole-server health ("" service); liveness does not depend on it.
	rp := c.ReadinessProbe
	if rp == nil || rp.GRPC == nil || rp.GRPC.Port != ports["http"] {
		t.Errorf("readiness probe = %+v, want gRPC on port %d", rp, ports["http"])
	} else if rp.GRPC.Service != nil && *rp.GRPC.Service != "" {
		t.Errorf("readiness probe asks about service %q; the server answers for \"\"", *rp.GRPC.Service)
	}
	for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "startup": c.StartupProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Port != intstr.FromString("http") {
			t.Errorf("%s probe = %+v, want an HTTP GET on port http", name, p)
		}
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources = %+v, want CPU and memory requests and a memory limit", c.Resources)
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("container security context = %+v", sc)
	}
	if psc := pod.Spec.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Errorf("pod security context = %+v, want runAsNonRoot", psc)
	}

	// Settings: the ConfigMap and env exist and name only settings the
	// binary reads; the Redis URL comes from the Secret.
	var envNames []string
	for _, e := range c.Env {
		envNames = append(envNames, e.Name)
		if e.Name == "VPNFACADE_REDIS_URL" {
			ref := e.ValueFrom.SecretKeyRef
			secret := named[*corev1.Secret](t, objs, ref.Name, false)
			url := string(secret.Data[ref.Key]) + secret.StringData[ref.Key]
			if !strings.HasPrefix(url, "redis://vpnfacade-redis:6379") {
				t.Errorf("Secret %s key %s = %q, want the component's Redis", ref.Name, ref.Key, url)
			}
		}
	}
	for _, ef := range c.EnvFrom {
		cm := named[*corev1.ConfigMap](t, objs, ef.ConfigMapRef.Name, false)
		for k := range cm.Data {
			envNames = append(envNames, k)
		}
	}
	checkSettings(t, "the Deployment", envNames)
	if !slices.Contains(envNames, "VPNFACADE_REDIS_URL") || !slices.Contains(envNames, "VPNFACADE_REGIONS") {
		t.Errorf("env %v lacks VPNFACADE_REDIS_URL or VPNFACADE_REGIONS", envNames)
	}
	named[*corev1.ServiceAccount](t, objs, pod.Spec.ServiceAccountName, false)

	// Service, PDB, ServiceMonitor and NetworkPolicy reach these pods.
	svc := named[*corev1.Service](t, objs, "vpnfacade", false)
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels)) || len(svc.Spec.Selector) == 0 {
		t.Errorf("Service selector %v does not select the pods %v", svc.Spec.Selector, pod.Labels)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.StrVal != "http" || svc.Spec.Ports[0].Name != "http" {
		t.Errorf("Service ports = %+v, want http -> http", svc.Spec.Ports)
	}
	pdb := named[*policyv1.PodDisruptionBudget](t, objs, "vpnfacade", false)
	if !selects(t, pdb.Spec.Selector, pod.Labels) {
		t.Errorf("the PodDisruptionBudget does not select the pods")
	}
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("PDB maxUnavailable = %v, want 1", pdb.Spec.MaxUnavailable)
	}
	sm := named[*monitoringv1.ServiceMonitor](t, objs, "vpnfacade", false)
	if !selects(t, &sm.Spec.Selector, svc.Labels) {
		t.Errorf("the ServiceMonitor selector %v does not select the Service (labels %v)", sm.Spec.Selector, svc.Labels)
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != svc.Spec.Ports[0].Name || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoints = %+v, want port %s path /metrics", sm.Spec.Endpoints, svc.Spec.Ports[0].Name)
	}
	np := named[*networkingv1.NetworkPolicy](t, objs, "vpnfacade", false)
	if !selects(t, &np.Spec.PodSelector, pod.Labels) {
		t.Errorf("the NetworkPolicy does not select the pods")
	}
	if !allowsPort(np.Spec.Ingress, ports["http"]) {
		t.Errorf("the NetworkPolicy does not let clients reach port %d", ports["http"])
	}

	// The Redis component: its Service reaches its pod, and only the
	// server's pods may connect.
	redis := named[*appsv1.Deployment](t, objs, "vpnfacade-redis", false)
	redisSvc := named[*corev1.Service](t, objs, "vpnfacade-redis", false)
	if !labels.SelectorFromSet(redisSvc.Spec.Selector).Matches(labels.Set(redis.Spec.Template.Labels)) {
		t.Errorf("the Redis Service does not select the Redis pod")
	}
	if labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(redis.Spec.Template.Labels)) {
		t.Errorf("the vpnfacade Service also selects the Redis pod")
	}
	rnp := named[*networkingv1.NetworkPolicy](t, objs, "vpnfacade-redis", false)
	if !selects(t, &rnp.Spec.PodSelector, redis.Spec.Template.Labels) || selects(t, &rnp.Spec.PodSelector, pod.Labels) {
		t.Errorf("the Redis NetworkPolicy selects the wrong pods")
	}
	if len(rnp.Spec.Ingress) != 1 || len(rnp.Spec.Ingress[0].From) != 1 ||
		!selects(t, rnp.Spec.Ingress[0].From[0].PodSelector, pod.Labels) ||
		selects(t, rnp.Spec.Ingress[0].From[0].PodSelector, redis.Spec.Template.Labels) {
		t.Errorf("Redis ingress = %+v, want only the server's pods", rnp.Spec.Ingress)
	}

	dash := named[*corev1.ConfigMap](t, objs, "vpnfacade-dashboard", false)
	if dash.Labels["grafana_dashboard"] != "1" || dash.Data["vpnfacade.json"] == "" {
		t.Errorf("dashboard ConfigMap labels %v, keys %d: want grafana_dashboard=1 and vpnfacade.json", dash.Labels, len(dash.Data))
	}
}

func allowsPort(rules []networkingv1.NetworkPolicyIngressRule, port int32) bool {
	for _, r := range rules {
		for _, p := range r.Ports {
			if p.Port != nil && p.Port.IntValue() == int(port) {
				return true
			}
		}
	}
	return false
}

// TestKindExample builds the no-AWS example and checks that vpnfacade reads
// the emulator it deploys, and that the emulator starts with its arguments.
func TestKindExample(t *testing.T) {
	objs := build(t, "examples/kind")
	dep := named[*appsv1.Deployment](t, objs, "vpnfacade", false)
	c := dep.Spec.Template.Spec.Containers[0]
	cm := named[*corev1.ConfigMap](t, objs, c.EnvFrom[0].ConfigMapRef.Name, false)
	var names []string
	for k := range cm.Data {
		names = append(names, k)
	}
	checkSettings(t, "examples/kind", names)
	if cm.Data["VPNFACADE_REGIONS"] == "" || cm.Data["VPNFACADE_LOG_FORMAT"] == "" {
		t.Errorf("the merged ConfigMap lost the base's settings: %v", cm.Data)
	}

	simSvc := named[*corev1.Service](t, objs, "vpnfacade-ec2sim", false)
	sim := named[*appsv1.Deployment](t, objs, "vpnfacade-ec2sim", false)
	want := fmt.Sprintf("http://%s:%d", simSvc.Name, simSvc.Spec.Ports[0].Port)
	for _, k := range []string{"AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL_STS"} {
		if cm.Data[k] != want {
			t.Errorf("%s = %q, want the emulator's Service %s", k, cm.Data[k], want)
		}
	}
	if !labels.SelectorFromSet(simSvc.Spec.Selector).Matches(labels.Set(sim.Spec.Template.Labels)) {
		t.Error("the emulator's Service does not select its pod")
	}
	svc := named[*corev1.Service](t, objs, "vpnfacade", false)
	if labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(sim.Spec.Template.Labels)) {
		t.Error("the vpnfacade Service also selects the emulator")
	}
	np := named[*networkingv1.NetworkPolicy](t, objs, "vpnfacade-to-ec2sim", false)
	if !selects(t, &np.Spec.PodSelector, dep.Spec.Template.Labels) || len(np.Spec.Egress) != 1 ||
		!selects(t, np.Spec.Egress[0].To[0].PodSelector, sim.Spec.Template.Labels) ||
		np.Spec.Egress[0].Ports[0].Port.IntValue() != int(simSvc.Spec.Ports[0].Port) {
		t.Errorf("vpnfacade's pods may not reach the emulator: %+v", np.Spec)
	}

	simC := sim.Spec.Template.Spec.Containers[0]
	if simC.Image != c.Image || len(simC.Command) != 1 || simC.Command[0] != "/usr/local/bin/ec2sim" {
		t.Errorf("emulator image %q command %q, want %q and the image's ec2sim", simC.Image, simC.Command, c.Image)
	}
	args := slices.Clone(simC.Args)
	for i, a := range args {
		if strings.HasPrefix(a, "--listen=") {
			if a != fmt.Sprintf("--listen=0.0.0.0:%d", simC.Ports[0].ContainerPort) {
				t.Errorf("emulator %s, want its container port %d", a, simC.Ports[0].ContainerPort)
			}
			args[i] = "--listen=127.0.0.1:0"
		}
	}
	if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--mutate-every=") }) {
		t.Errorf("emulator args %q: its data never changes", args)
	}
	proctest.Start(t, simBin, args, nil, regexp.MustCompile(`ec2sim listening on http://`), 60*time.Second)
}
