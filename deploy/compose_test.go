package deploy_test

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/vpnfacade/vpnfacade/internal/proctest"
)

// loadCompose loads ../docker-compose.yml as `docker compose` would,
// validating it against the Compose schema.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{repoRoot + "/docker-compose.yml"},
		cli.WithWorkingDirectory(repoRoot), cli.WithName("vpnfacade"))
	if err != nil {
		t.Fatal(err)
	}
	project, err := opts.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("loading docker-compose.yml: %v", err)
	}
	return project
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("docker-compose.yml has no service %s", name)
	}
	return s
}

// TestComposeFile checks the shared-cache setup a user starts with
// `docker compose up`: one image build, three replicas that can scale,
// health checks, restarts and an emulator whose data changes.
func TestComposeFile(t *testing.T) {
	p := loadCompose(t)
	facade := service(t, p, "vpnfacade")
	sim := service(t, p, "ec2sim")
	redis := service(t, p, "redis")

	var builds []string
	for name, s := range p.Services {
		if s.Build != nil {
			builds = append(builds, name)
		}
		if s.Restart == "" || s.Restart == types.RestartPolicyNo {
			t.Errorf("service %s has no restart policy", name)
		}
	}
	if !slices.Equal(builds, []string{"vpnfacade"}) {
		t.Errorf("services building an image: %v, want only vpnfacade", builds)
	}
	if sim.Image == "" || sim.Image != facade.Image || sim.PullPolicy != types.PullPolicyNever {
		t.Errorf("ec2sim image %q (pull_policy %q), want vpnfacade's %q, never pulled", sim.Image, sim.PullPolicy, facade.Image)
	}

	if facade.Deploy == nil || facade.Deploy.Replicas == nil || *facade.Deploy.Replicas < 2 {
		t.Errorf("vpnfacade runs %v replicas; the shared-cache setup needs several", facade.Deploy)
	}
	if facade.ContainerName != "" {
		t.Errorf("container_name %q forbids more than one replica", facade.ContainerName)
	}
	if len(facade.Ports) == 0 {
		t.Error("vpnfacade publishes no port")
	}
	for _, port := range facade.Ports {
		if port.Published != "" {
			t.Errorf("vpnfacade publishes fixed host port %s, which forbids --scale", port.Published)
		}
		if port.Target != 8080 {
			t.Errorf("vpnfacade publishes container port %d, want 8080", port.Target)
		}
	}
	env := map[string]string{}
	var names []string
	for k, v := range facade.Environment {
		if v != nil {
			env[k] = *v
		}
		names = append(names, k)
	}
	checkSettings(t, "the vpnfacade service", names)
	if !strings.HasPrefix(env["VPNFACADE_REDIS_URL"], "redis://redis:") {
		t.Errorf("VPNFACADE_REDIS_URL = %q, want the redis service", env["VPNFACADE_REDIS_URL"])
	}
	if dep, ok := facade.DependsOn["redis"]; !ok || dep.Condition != types.ServiceConditionHealthy {
		t.Errorf("vpnfacade depends on redis %+v, want service_healthy", dep)
	}

	if hc := facade.HealthCheck; hc == nil || hc.Disable || len(hc.Test) < 3 || hc.Test[0] != "CMD" || hc.Test[2] != "healthcheck" {
		t.Errorf("vpnfacade healthcheck = %+v, want CMD vpnfacade healthcheck", hc)
	}
	if hc := redis.HealthCheck; hc == nil || hc.Disable || len(hc.Test) == 0 {
		t.Errorf("redis has no healthcheck (vpnfacade waits for it)")
	}
	if hc := sim.HealthCheck; hc == nil || !hc.Disable {
		t.Errorf("ec2sim must disable the image's vpnfacade healthcheck; got %+v", hc)
	}
	if i := slices.IndexFunc(sim.Command, func(a string) bool { return strings.HasPrefix(a, "--mutate-every=") }); i < 0 {
		t.Errorf("ec2sim command %q never changes its data (no --mutate-every)", sim.Command)
	} else if d, err := time.ParseDuration(strings.TrimPrefix(sim.Command[i], "--mutate-every=")); err != nil || d <= 0 {
		t.Errorf("ec2sim %s: want a positive duration", sim.Command[i])
	}
}

// TestComposeCommandsRun runs the compose file's commands with the real
// binaries: the emulator with its flags, and the vpnfacade healthcheck
// with the service's environment against a serving vpnfacade.
func TestComposeCommandsRun(t *testing.T) {
	p := loadCompose(t)
	sim := service(t, p, "ec2sim")
	if len(sim.Entrypoint) != 1 || sim.Entrypoint[0] != "/usr/local/bin/ec2sim" {
		t.Fatalf("ec2sim entrypoint = %q", sim.Entrypoint)
	}
	args := slices.Clone(sim.Command)
	for i, a := range args {
		if strings.HasPrefix(a, "--listen=") {
			args[i] = "--listen=127.0.0.1:0" // the container's 0.0.0.0:8081, on loopback
		}
	}
	proctest.Start(t, simBin, args, nil, regexp.MustCompile(`ec2sim listening on http://`), 60*time.Second)

	facade := service(t, p, "vpnfacade")
	url := startDemo(t)
	waitServing(t, url)
	test := facade.HealthCheck.Test
	if test[1] != "/usr/local/bin/vpnfacade" {
		t.Fatalf("healthcheck runs %q, not the image's vpnfacade", test[1])
	}
	cmd := exec.CommandContext(t.Context(), facadeBin, test[2:]...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range facade.Environment {
		if v != nil && k != "VPNFACADE_LISTEN" {
			cmd.Env = append(cmd.Env, k+"="+*v)
		}
	}
	if listen := facade.Environment["VPNFACADE_LISTEN"]; listen == nil || !strings.HasSuffix(*listen, ":8080") {
		t.Errorf("VPNFACADE_LISTEN = %v, want the published :8080", listen)
	}
	// The container listens on :8080; here the demo listens on a free port.
	cmd.Env = append(cmd.Env, "VPNFACADE_LISTEN="+strings.TrimPrefix(url, "http://"))
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "SERVING" {
		t.Errorf("compose healthcheck %q: %v, output %q; want exit 0 and SERVING", test[1:], err, out)
	}
}
