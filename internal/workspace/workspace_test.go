package workspace

import (
	"bufio"
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// rootModule is the module path the repository root must declare.
const rootModule = "github.com/arpc-go/arpc"

// buildEnv lists the environment variables that change what a nested
// `go test` builds. The test reads them so that Go's test cache keys this
// test's result on them too.
var buildEnv = []string{"GOFLAGS", "GOWORK", "GOOS", "GOARCH", "GOEXPERIMENT", "CGO_ENABLED"}

// repoRoot returns the repository root, two levels above this package, after
// checking that it holds the library's go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatalf("repository root %s: %v", root, err)
	}
	if modulePath(data) != rootModule {
		t.Fatalf("%s/go.mod declares %q, want %q", root, modulePath(data), rootModule)
	}
	return root
}

// modulePath returns the path on a go.mod's module line, or "".
func modulePath(gomod []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module"); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

// nestedModules walks the tree under root the way the go command does
// (skipping directories named testdata or starting with "." or "_") and
// returns the directories, other than root, that hold a go.mod.
//
// It also reads every file it passes. Go's test cache keys a result on the
// files a test opened, so a change anywhere in the nested modules' sources, or
// in the library they build on, reruns this test instead of replaying a stale
// pass.
func nestedModules(t *testing.T, root string) []string {
	t.Helper()
	var mods []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if _, err := os.ReadFile(path); err != nil {
			return err
		}
		if name == "go.mod" && filepath.Dir(path) != root {
			mods = append(mods, filepath.Dir(path))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", root, err)
	}
	return mods
}

// stderr returns what a failed command's Output call captured on stderr.
func stderr(err error) []byte {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.Stderr
	}
	return nil
}

// goCmd builds a go command run in dir, bounded by ctx.
func goCmd(ctx context.Context, dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	return cmd
}

// TestLibraryImportsStandardOnly checks that no package of the library module
// imports anything outside the standard library and the module itself (tests
// aside), so that fetching the library fetches no other module's code.
func TestLibraryImportsStandardOnly(t *testing.T) {
	root := repoRoot(t)
	out, err := goCmd(t.Context(), root, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list -deps ./...: %v\n%s", err, stderr(err))
	}
	var own int
	for _, path := range strings.Fields(string(out)) {
		if path == rootModule || strings.HasPrefix(path, rootModule+"/") {
			own++
			continue
		}
		t.Errorf("%s is imported by the library module: code that needs a third-party module "+
			"belongs in its own module, as benchmark_grpc does", path)
	}
	if own == 0 {
		t.Fatalf("go list -deps ./... in %s listed none of the library's own packages", root)
	}
}

// TestWorkspaceListsEveryModule checks that go.work uses every module in the
// tree, so that `go tool ...` and the `work` package pattern (which .ci/run's
// vet, staticcheck and benchmark steps use) reach all of them.
func TestWorkspaceListsEveryModule(t *testing.T) {
	root := repoRoot(t)
	gowork, err := goCmd(t.Context(), root, "env", "GOWORK").Output()
	if err != nil {
		t.Fatalf("go env GOWORK: %v\n%s", err, stderr(err))
	}
	if g := string(bytes.TrimSpace(gowork)); g == "" || g == "off" {
		t.Skip("workspace mode is off (GOWORK=off): go.work is not in use")
	}
	out, err := goCmd(t.Context(), root, "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v\n%s", err, stderr(err))
	}
	used := map[string]bool{}
	for _, dir := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		used[filepath.Clean(dir)] = true
	}
	for _, dir := range append([]string{root}, nestedModules(t, root)...) {
		if !used[filepath.Clean(dir)] {
			t.Errorf("go.work does not use the module in %s: add it with `go work use`", dir)
		}
	}
}

// TestNestedModules runs the tests of every module nested under the
// repository root, which `./...` at the root does not reach.
func TestNestedModules(t *testing.T) {
	for _, k := range buildEnv {
		_ = os.Getenv(k)
	}
	root := repoRoot(t)
	mods := nestedModules(t, root)
	if len(mods) == 0 {
		t.Fatalf("no nested module under %s: benchmark_grpc should have its own go.mod", root)
	}

	ctx := t.Context()
	var timeout time.Duration // as this binary's: none unless -timeout set one
	if d, ok := t.Deadline(); ok {
		// Leave the nested run time to report before this binary's own deadline.
		timeout = (time.Until(d) * 9 / 10).Round(time.Second)
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}

	args := []string{"test", "-count=1", "-timeout=" + timeout.String()}
	if raceEnabled {
		args = append(args, "-race")
	}
	if testing.Short() {
		args = append(args, "-short")
	}
	if testing.Verbose() {
		args = append(args, "-v")
	}
	args = append(args, "./...")

	for _, dir := range mods {
		rel, err := filepath.Rel(root, dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(filepath.ToSlash(rel), func(t *testing.T) {
			pkgs, err := goCmd(ctx, dir, "list", "./...").Output()
			if err != nil {
				t.Fatalf("go list ./... in %s: %v\n%s", rel, err, stderr(err))
			}
			if len(bytes.TrimSpace(pkgs)) == 0 {
				// A module of tool dependencies only (tools/) has nothing to test.
				t.Logf("%s holds no packages", rel)
				return
			}
			out, err := goCmd(ctx, dir, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), rel, err, out)
			}
			t.Logf("go %s in %s:\n%s", strings.Join(args, " "), rel, out)
		})
	}
}
