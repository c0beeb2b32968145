package check

import (
	"bufio"
	"bytes"
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
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

const kubeDir = "deploy/kubernetes"

// kubeCodecs decode the kinds of deploy/kubernetes strictly: an unknown or
// duplicate field is an error, as kubectl apply --validate=strict has it.
var kubeCodecs = func() serializer.CodecFactory {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		appsv1.AddToScheme, corev1.AddToScheme, policyv1.AddToScheme,
		autoscalingv2.AddToScheme, networkingv1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	return serializer.NewCodecFactory(scheme, serializer.EnableStrict)
}()

// decodeKube decodes every document of a YAML stream into its API type.
func decodeKube(t testing.TB, name string, data []byte) []runtime.Object {
	t.Helper()
	var objs []runtime.Object
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, name)
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, gvk, err := kubeCodecs.UniversalDeserializer().Decode(doc, nil, nil)
		require.NoError(t, err, "%s: strict decoding into the Kubernetes API types", name)
		require.NotNil(t, gvk)
		objs = append(objs, obj)
	}
	return objs
}

// kubeManifests are the objects of deploy/kubernetes, by file name.
type kubeManifests struct {
	deployment *appsv1.Deployment
	service    *corev1.Service
	pdb        *policyv1.PodDisruptionBudget
	hpa        *autoscalingv2.HorizontalPodAutoscaler
	config     *corev1.ConfigMap
	secret     *corev1.Secret
	ingress    *networkingv1.Ingress
	files      map[string][]runtime.Object
}

// kustomization is the part of kustomization.yaml the tests read; strict
// decoding rejects a field this test does not know.
type kustomization struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Labels     []struct {
		Pairs map[string]string `json:"pairs"`
	} `json:"labels"`
	Resources []string `json:"resources"`
	Images    []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
}

func readKustomization(t testing.TB) kustomization {
	t.Helper()
	var k kustomization
	require.NoError(t, yaml.UnmarshalStrict(readRepoFile(t, kubeDir+"/kustomization.yaml"), &k))
	return k
}

func loadKube(t testing.TB) kubeManifests {
	t.Helper()
	m := kubeManifests{files: map[string][]runtime.Object{}}
	paths, err := filepath.Glob(filepath.Join(root(t), kubeDir, "*.yaml"))
	require.NoError(t, err)
	for _, p := range paths {
		name := filepath.Base(p)
		if name == "kustomization.yaml" || name == "secret.yaml" {
			continue // read apart; secret.yaml is an operator's own, git-ignored
		}
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		objs := decodeKube(t, name, data)
		m.files[name] = objs
		for _, o := range objs {
			switch o := o.(type) {
			case *appsv1.Deployment:
				m.deployment = o
			case *corev1.Service:
				m.service = o
			case *policyv1.PodDisruptionBudget:
				m.pdb = o
			case *autoscalingv2.HorizontalPodAutoscaler:
				m.hpa = o
			case *corev1.ConfigMap:
				m.config = o
			case *corev1.Secret:
				m.secret = o
			case *networkingv1.Ingress:
				m.ingress = o
			default:
				t.Errorf("%s: unexpected kind %T", name, o)
			}
		}
	}
	for what, missing := range map[string]bool{
		"Deployment": m.deployment == nil, "Service": m.service == nil, "PodDisruptionBudget": m.pdb == nil,
		"HorizontalPodAutoscaler": m.hpa == nil, "ConfigMap": m.config == nil, "Secret example": m.secret == nil,
		"Ingress example": m.ingress == nil,
	} {
		require.False(t, missing, "deploy/kubernetes has no %s", what)
	}
	return m
}

func (m kubeManifests) container(t testing.TB) corev1.Container {
	t.Helper()
	cs := m.deployment.Spec.Template.Spec.Containers
	require.Len(t, cs, 1)
	return cs[0]
}

func containerPort(t testing.TB, c corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("the container has no port named %q", name)
	return 0
}

// probePaths returns every HTTP path that a deployment file probes the
// gateway on: the Deployment's probes and Render's health check. The
// release test GETs each from the running binary.
func probePaths(t testing.TB) []string {
	t.Helper()
	c := loadKube(t).container(t)
	var paths []string
	for _, p := range []*corev1.Probe{c.StartupProbe, c.LivenessProbe, c.ReadinessProbe} {
		require.NotNil(t, p)
		require.NotNil(t, p.HTTPGet)
		paths = append(paths, p.HTTPGet.Path)
	}
	paths = append(paths, webService(t, readRender(t)).HealthCheckPath)
	slices.Sort(paths)
	return slices.Compact(paths)
}

// The Deployment: probes on /health and /ready on the gateway's PORT, a
// grace period above the preStop sleep plus SHUTDOWN_DRAIN, the image's
// user, a read-only root, no privilege, resource requests, settings from
// the ConfigMap and the Secret.
func TestKubernetesDeployment(t *testing.T) {
	m := loadKube(t)
	df := parseDockerfile(t)
	pod := m.deployment.Spec.Template.Spec
	c := m.container(t)

	port := m.config.Data["PORT"]
	require.Equal(t, defaultPort(t), port, "the ConfigMap's PORT")
	assert.Equal(t, port, strconv.Itoa(int(containerPort(t, c, "http"))), "containerPort http is PORT")
	_, metricsPort, err := net.SplitHostPort(m.config.Data["METRICS_ADDR"])
	require.NoError(t, err, "METRICS_ADDR in the ConfigMap")
	assert.Equal(t, metricsPort, strconv.Itoa(int(containerPort(t, c, "metrics"))), "containerPort metrics is METRICS_ADDR's")

	for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		require.NotNil(t, p, "%s probe", name)
		require.NotNil(t, p.HTTPGet, "%s probe is an HTTP GET", name)
		assert.Equal(t, "http", p.HTTPGet.Port.String(), "the %s probe asks PORT", name)
		want := healthPath
		if name == "readiness" {
			want = readyPath // the stores answer too
		}
		assert.Equal(t, want, p.HTTPGet.Path, "%s probe", name)
	}

	require.NotNil(t, pod.TerminationGracePeriodSeconds)
	grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
	var preStop time.Duration
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		preStop = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	drain := shutdownDrain(t, m.config.Data["SHUTDOWN_DRAIN"])
	assert.Greater(t, grace, preStop+drain, "terminationGracePeriodSeconds %s must exceed the preStop sleep %s plus SHUTDOWN_DRAIN %s", grace, preStop, drain)

	require.NotNil(t, pod.SecurityContext)
	assert.Equal(t, ptr(true), pod.SecurityContext.RunAsNonRoot)
	assert.Equal(t, ptr(int64(df.uid)), pod.SecurityContext.RunAsUser, "the image's USER")
	assert.Equal(t, ptr(int64(df.gid)), pod.SecurityContext.RunAsGroup)
	require.NotNil(t, c.SecurityContext)
	assert.Equal(t, ptr(true), c.SecurityContext.ReadOnlyRootFilesystem)
	assert.Equal(t, ptr(false), c.SecurityContext.AllowPrivilegeEscalation)
	require.NotNil(t, c.SecurityContext.Capabilities)
	assert.Equal(t, []corev1.Capability{"ALL"}, c.SecurityContext.Capabilities.Drop)
	assert.Equal(t, ptr(false), pod.AutomountServiceAccountToken)

	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		q, ok := c.Resources.Requests[r]
		assert.True(t, ok && !q.IsZero(), "a %s request (the autoscaler computes its utilisation from it)", r)
	}
	limit := c.Resources.Limits[corev1.ResourceMemory]
	assert.Equal(t, 1, limit.Cmp(c.Resources.Requests[corev1.ResourceMemory]), "the memory limit is above the request")

	var refs []string
	for _, e := range c.EnvFrom {
		switch {
		case e.ConfigMapRef != nil:
			refs = append(refs, "ConfigMap/"+e.ConfigMapRef.Name)
		case e.SecretRef != nil:
			refs = append(refs, "Secret/"+e.SecretRef.Name)
		}
	}
	assert.ElementsMatch(t, []string{"ConfigMap/" + m.config.Name, "Secret/" + m.secret.Name}, refs)
	var names []string
	for _, e := range c.Env {
		names = append(names, e.Name)
		assert.False(t, isSecret(e.Name) && e.ValueFrom == nil, "%s must come from the Secret, not a value", e.Name)
	}
	requireSettings(t, "the Deployment's env", names...)
	assert.Equal(t, []string{"serve"}, c.Args)
}

// The settings: names of configs/.env.example, secrets in the Secret only,
// and the Secret an example whose values are all placeholders.
func TestKubernetesSettings(t *testing.T) {
	m := loadKube(t)
	var names []string
	for k := range m.config.Data {
		names = append(names, k)
		assert.False(t, isSecret(k), "the ConfigMap must not hold the secret %s", k)
	}
	requireSettings(t, "the ConfigMap", names...)

	names = names[:0]
	for k, v := range m.secret.StringData {
		names = append(names, k)
		assert.Contains(t, v, "replace-me", "secret.example.yaml's %s is a placeholder", k)
	}
	assert.Empty(t, m.secret.Data, "the example holds no encoded value")
	requireSettings(t, "the Secret example", names...)
	for _, s := range secretSettings {
		_, inSecret := m.secret.StringData[s]
		assert.True(t, inSecret, "the Secret example has %s", s)
	}
	assert.NotContains(t, readKustomization(t).Resources, "secret.example.yaml",
		"applying the manifests must not overwrite the operator's real Secret")
}

// The Service, the PodDisruptionBudget, the autoscaler and the Ingress
// example point at the Deployment's pods and ports.
func TestKubernetesObjectsFitTogether(t *testing.T) {
	m := loadKube(t)
	podLabels := labels.Set(m.deployment.Spec.Template.Labels)
	sel, err := metav1.LabelSelectorAsSelector(m.deployment.Spec.Selector)
	require.NoError(t, err)
	assert.True(t, sel.Matches(podLabels), "the Deployment's selector matches its pods")

	assert.True(t, labels.SelectorFromSet(m.service.Spec.Selector).Matches(podLabels), "the Service selects the pods")
	c := m.container(t)
	for _, p := range m.service.Spec.Ports {
		containerPort(t, c, p.TargetPort.String()) // fails unless the container has it
	}

	pdbSel, err := metav1.LabelSelectorAsSelector(m.pdb.Spec.Selector)
	require.NoError(t, err)
	assert.True(t, pdbSel.Matches(podLabels), "the PodDisruptionBudget covers the pods")
	require.NotNil(t, m.pdb.Spec.MaxUnavailable)

	ref := m.hpa.Spec.ScaleTargetRef
	assert.Equal(t, []string{"apps/v1", "Deployment", m.deployment.Name}, []string{ref.APIVersion, ref.Kind, ref.Name})
	require.Len(t, m.hpa.Spec.Metrics, 1)
	res := m.hpa.Spec.Metrics[0].Resource
	require.NotNil(t, res)
	assert.Equal(t, corev1.ResourceCPU, res.Name, "the autoscaler follows CPU")
	require.NotNil(t, m.hpa.Spec.MinReplicas)
	assert.GreaterOrEqual(t, *m.hpa.Spec.MinReplicas, int32(2), "at least two instances, so that a drain leaves one")
	assert.Nil(t, m.deployment.Spec.Replicas, "the autoscaler owns the replica count")

	// The Ingress example: to the Service's http port, with hour-long
	// proxy timeouts for the calls' WebSockets.
	for _, rule := range m.ingress.Spec.Rules {
		for _, p := range rule.HTTP.Paths {
			assert.Equal(t, m.service.Name, p.Backend.Service.Name)
			assert.Equal(t, "http", p.Backend.Service.Port.Name)
		}
	}
	for _, a := range []string{"nginx.ingress.kubernetes.io/proxy-read-timeout", "nginx.ingress.kubernetes.io/proxy-send-timeout"} {
		v, err := strconv.Atoi(m.ingress.Annotations[a])
		require.NoError(t, err, a)
		assert.GreaterOrEqual(t, v, 3600, "%s: a call lasts up to OpenAI's 60-minute session", a)
	}
}

// kustomization.yaml lists every manifest but the examples, and names the
// Deployment's image so that kustomize edit set image finds it.
func TestKustomizationListsTheManifests(t *testing.T) {
	k := readKustomization(t)
	m := loadKube(t)
	assert.Equal(t, "Kustomization", k.Kind)
	var want []string
	for name := range m.files {
		if !strings.Contains(name, ".example.") {
			want = append(want, name)
		}
	}
	assert.ElementsMatch(t, want, k.Resources)
	require.Len(t, k.Images, 1)
	assert.Equal(t, m.container(t).Image, k.Images[0].Name)
}

// kubectl's own kustomize builds the kustomization, and its output decodes
// strictly; where kubectl is not installed, the test says so and skips.
func TestKustomizeBuilds(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("skipping: kubectl is not installed (its kustomize would build deploy/kubernetes)")
	}
	cmd := exec.Command(kubectl, "kustomize", filepath.Join(root(t), kubeDir))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	done := make(chan struct{})
	var out []byte
	go func() {
		defer close(done)
		out, err = cmd.Output()
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Minute): // a hang guard
		_ = cmd.Process.Kill()
		<-done
		t.Fatal("kubectl kustomize did not finish")
	}
	require.NoError(t, err, "kubectl kustomize: %s", stderr.String())
	kinds := map[string]int{}
	for _, o := range decodeKube(t, "kubectl kustomize output", out) {
		kinds[fmt.Sprintf("%T", o)]++
		if d, ok := o.(*appsv1.Deployment); ok {
			assert.Equal(t, "gateway", d.Labels["app.kubernetes.io/part-of"], "the kustomization's labels apply")
		}
	}
	assert.Equal(t, map[string]int{
		"*v1.ConfigMap": 1, "*v1.Deployment": 1, "*v1.Service": 1,
		"*v1.PodDisruptionBudget": 1, "*v2.HorizontalPodAutoscaler": 1,
	}, kinds)
}

func ptr[T any](v T) *T { return &v }
