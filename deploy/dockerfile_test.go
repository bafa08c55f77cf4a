package deploy_test

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// finalStage parses ../Dockerfile with BuildKit's parser and returns the
// instructions of its last stage, by lower-case name.
func finalStage(t *testing.T) map[string]*parser.Node {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("parsing the Dockerfile: %v", err)
	}
	stage := map[string]*parser.Node{}
	for _, n := range res.AST.Children {
		if strings.EqualFold(n.Value, "from") {
			stage = map[string]*parser.Node{}
		}
		stage[strings.ToLower(n.Value)] = n
	}
	return stage
}

// execForm returns the arguments of an exec-form (JSON array) instruction
// n, starting at node first.
func execForm(t *testing.T, n, first *parser.Node) []string {
	t.Helper()
	if n == nil || !n.Attributes["json"] {
		t.Fatalf("%v: want the exec (JSON array) form: the image has no shell", n)
	}
	var args []string
	for a := first; a != nil; a = a.Next {
		args = append(args, a.Value)
	}
	return args
}

// TestDockerfileHealthcheck checks that the image's HEALTHCHECK runs the
// image's own binary in exec form, and that the command works against a
// serving vpnfacade.
func TestDockerfileHealthcheck(t *testing.T) {
	stage := finalStage(t)
	entrypoint := execForm(t, stage["entrypoint"], stage["entrypoint"].Next)
	hc := stage["healthcheck"]
	if hc == nil || hc.Next == nil || !strings.EqualFold(hc.Next.Value, "cmd") {
		t.Fatalf("the final stage has no HEALTHCHECK CMD: %v", hc)
	}
	test := execForm(t, hc, hc.Next.Next)
	if len(test) < 2 || test[0] != entrypoint[0] || test[1] != "healthcheck" {
		t.Fatalf("HEALTHCHECK runs %q; want %s healthcheck", test, entrypoint[0])
	}
	if user := stage["user"]; user == nil || strings.HasPrefix(user.Next.Value, "root") || strings.HasPrefix(user.Next.Value, "0") {
		t.Errorf("the image runs as %v, want a non-root user", user)
	}

	url := startDemo(t)
	waitServing(t, url)
	cmd := exec.CommandContext(t.Context(), facadeBin, test[1:]...)
	// The image sets no VPNFACADE_LISTEN: the default :8080 is checked. Here
	// the demo listens on a free port instead.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "VPNFACADE_LISTEN=" + strings.TrimPrefix(url, "http://")}
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "SERVING" {
		t.Errorf("HEALTHCHECK %q: %v, output %q; want exit 0 and SERVING", test, err, out)
	}
}

// TestDockerignore checks that the build context keeps every file the
// image's `go build` reads (per `go list -deps`) and leaves out .git,
// node_modules and this module.
func TestDockerignore(t *testing.T) {
	f, err := os.Open(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatalf(".dockerignore: %v", err)
	}
	patterns, err := ignorefile.ReadAll(f)
	_ = f.Close()
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatalf(".dockerignore patterns: %v", err)
	}
	excluded := func(rel string) bool {
		m, err := pm.MatchesOrParentMatches(filepath.ToSlash(rel))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}

	for _, rel := range []string{".git/HEAD", "web/node_modules/esbuild/package.json", "node_modules/x/y.js", "deploy/go.mod", "bench/out/run.txt", "server/server.test"} {
		if !excluded(rel) {
			t.Errorf("%s is sent to the Docker daemon with every build", rel)
		}
	}

	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-deps", "-json=Dir,ImportPath,GoFiles,EmbedFiles,Module", "./cmd/vpnfacade", "./cmd/ec2sim")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	needed := []string{"go.mod", "go.sum"}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var pkg struct {
			Dir                 string
			GoFiles, EmbedFiles []string
			Module              *struct{ Main bool }
		}
		if err := dec.Decode(&pkg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if pkg.Module == nil || !pkg.Module.Main {
			continue
		}
		for _, name := range append(pkg.GoFiles, pkg.EmbedFiles...) {
			rel, err := filepath.Rel(root, filepath.Join(pkg.Dir, name))
			if err != nil {
				t.Fatal(err)
			}
			needed = append(needed, rel)
		}
	}
	if len(needed) < 20 {
		t.Fatalf("go list found only %d files: %q", len(needed), needed)
	}
	for _, rel := range needed {
		if excluded(rel) {
			t.Errorf("%s is needed by the build but .dockerignore leaves it out", rel)
		}
	}
}
