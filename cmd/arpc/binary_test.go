package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// TestBinary builds arpc and runs it as a user does, as a subprocess
// against a server in the test: output, exit status, --json parsed back,
// and watch ended by SIGINT as by Ctrl-C.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*deadline)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "arpc")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	srv, src, _ := testServer(t)
	exe := func(args ...string) (int, string, string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin, args...)
		var stdout, stderr syncBuffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return 0, stdout.String(), stderr.String()
		case errors.As(err, &ee):
			return ee.ExitCode(), stdout.String(), stderr.String()
		}
		t.Fatalf("arpc %v: %v", args, err)
		return -1, "", ""
	}

	code, stdout, _ := exe("--help")
	require.Equal(t, exitOK, code)
	require.Contains(t, stdout, "exit status:")
	code, _, _ = exe("inspect")
	require.Equal(t, exitUsage, code)

	code, stdout, stderr := exe("inspect", srv.Addr, "--json")
	require.Equal(t, exitOK, code, stderr)
	var v inspectView
	require.NoError(t, json.Unmarshal([]byte(stdout), &v), stdout)
	require.Equal(t, []string{"Start", "Ready"}, v.Active)

	code, stdout, stderr = exe("add", srv.Addr, "Busy")
	require.Equal(t, exitOK, code, stderr)
	require.Equal(t, "add Busy: executed\nactive: Start Ready Busy\n", stdout)
	code, _, _ = exe("add", srv.Addr, "Vetoed")
	require.Equal(t, exitCanceled, code)
	code, _, _ = exe("when", srv.Addr, "Idle", "--timeout", "100ms")
	require.Equal(t, exitTimeout, code)
	code, stdout, stderr = exe("request", srv.Addr, "Requested", "Done", "--json")
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, `"result": 42`)

	// watch until SIGINT
	cmd := exec.CommandContext(ctx, bin, "watch", srv.Addr)
	pipe, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	lines := bufio.NewScanner(pipe)
	next := func() string {
		require.True(t, lines.Scan(), "watch ended early: %v", lines.Err())
		return lines.Text()
	}
	require.Contains(t, next(), "watching desk at")
	require.Contains(t, next(), " active: Start Ready Requested Done Busy")
	require.Equal(t, am.Executed, src.Add1("Idle", nil))
	require.True(t, strings.HasSuffix(next(), " +Idle -Busy  (Busy:2 Idle:1)"))
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	require.False(t, lines.Scan(), "nothing after the interrupt")
	require.NoError(t, cmd.Wait(), "exit status 0 on Ctrl-C")
}
