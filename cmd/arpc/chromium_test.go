package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// screenshotOut, when set, is where TestInspectorInChromium also saves its
// screenshot (the README's picture is made this way).
var screenshotOut = flag.String("inspector-screenshot", "", "also save the inspector's screenshot to this file")

// chromiumPath finds a Chromium binary: $ARPC_CHROMIUM, or chromium on the
// PATH (Debian's package).
func chromiumPath() string {
	if p := os.Getenv("ARPC_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browser drives a headless Chromium over the DevTools protocol on a pipe
// (--remote-debugging-pipe: JSON messages ended by NUL, fds 3 and 4).
type browser struct {
	cmd     *exec.Cmd
	in      *os.File // our end of the browser's fd 3
	out     *os.File // our end of the browser's fd 4
	r       *bufio.Reader
	seq     int
	session string
	// events are the methods of the events read so far
	events []string
	stderr syncBuffer
}

func startBrowser(t *testing.T, bin string) *browser {
	t.Helper()
	inR, inW, err := os.Pipe()
	require.NoError(t, err)
	outR, outW, err := os.Pipe()
	require.NoError(t, err)
	b := &browser{in: inW, out: outR, r: bufio.NewReader(outR)}
	b.cmd = exec.Command(bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--remote-debugging-pipe", "--user-data-dir="+t.TempDir(),
		"--no-first-run", "--no-default-browser-check", "--disable-extensions",
		"--disable-background-networking", "--disable-sync", "--mute-audio",
		"--hide-scrollbars", "--window-size=1360,1000", "about:blank")
	b.cmd.ExtraFiles = []*os.File{inR, outW}
	b.cmd.Stderr = &b.stderr
	require.NoError(t, b.cmd.Start())
	_ = inR.Close()
	_ = outW.Close()
	t.Cleanup(func() {
		_, _ = b.call("", "Browser.close", nil)
		_ = b.in.Close()
		done := make(chan error, 1)
		go func() { done <- b.cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(deadline):
			_ = b.cmd.Process.Kill()
			<-done
		}
		_ = b.out.Close()
	})
	return b
}

// call sends one DevTools command (to the attached page when session is
// set) and returns its result, skipping events; bounded by deadline.
func (b *browser) call(session, method string, params any) (json.RawMessage, error) {
	b.seq++
	msg := map[string]any{"id": b.seq, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if session != "" {
		msg["sessionId"] = session
	}
	data, err := json.Marshal(msg)
	if err != nil {
		return nil, err
	}
	if _, err := b.in.Write(append(data, 0)); err != nil {
		return nil, err
	}
	if err := b.out.SetReadDeadline(time.Now().Add(deadline)); err != nil {
		return nil, err
	}
	for {
		line, err := b.r.ReadBytes(0)
		if err != nil {
			return nil, fmt.Errorf("%s: %w (browser stderr: %s)", method, err, b.stderr.String())
		}
		var resp struct {
			ID     int             `json:"id"`
			Method string          `json:"method"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(line[:len(line)-1], &resp); err != nil {
			return nil, err
		}
		if resp.Method != "" {
			b.events = append(b.events, resp.Method)
			continue
		}
		if resp.ID != b.seq {
			continue
		}
		if resp.Error != nil {
			return nil, fmt.Errorf("%s: %s", method, resp.Error.Message)
		}
		return resp.Result, nil
	}
}

// waitEvent reads messages until the event method has arrived (or had
// already), bounded by deadline.
func (b *browser) waitEvent(t *testing.T, method string) {
	t.Helper()
	for !slices.Contains(b.events, method) {
		require.NoError(t, b.out.SetReadDeadline(time.Now().Add(deadline)))
		line, err := b.r.ReadBytes(0)
		require.NoError(t, err, "waiting for %s (browser stderr: %s)", method, b.stderr.String())
		var ev struct{ Method string }
		require.NoError(t, json.Unmarshal(line[:len(line)-1], &ev))
		if ev.Method != "" {
			b.events = append(b.events, ev.Method)
		}
	}
}

// open loads url in a new page, attached, and waits for its load event.
func (b *browser) open(t *testing.T, url string) {
	t.Helper()
	res, err := b.call("", "Target.createTarget", map[string]any{"url": "about:blank"})
	require.NoError(t, err)
	var target struct{ TargetID string }
	require.NoError(t, json.Unmarshal(res, &target))
	res, err = b.call("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true})
	require.NoError(t, err)
	var att struct{ SessionID string }
	require.NoError(t, json.Unmarshal(res, &att))
	b.session = att.SessionID
	_, err = b.call(b.session, "Page.enable", nil)
	require.NoError(t, err)
	b.events = nil
	_, err = b.call(b.session, "Page.navigate", map[string]any{"url": url})
	require.NoError(t, err)
	b.waitEvent(t, "Page.loadEventFired")
}

// eval evaluates a JavaScript expression in the page, awaiting a promise.
func (b *browser) eval(t *testing.T, expr string) json.RawMessage {
	t.Helper()
	res, err := b.call(b.session, "Runtime.evaluate", map[string]any{
		"expression": expr, "awaitPromise": true, "returnByValue": true,
	})
	require.NoError(t, err)
	var out struct {
		Result           struct{ Value json.RawMessage }
		ExceptionDetails *struct {
			Text      string
			Exception struct{ Description string }
		}
	}
	require.NoError(t, json.Unmarshal(res, &out))
	if out.ExceptionDetails != nil {
		t.Fatalf("%s: %s %s", expr, out.ExceptionDetails.Text, out.ExceptionDetails.Exception.Description)
	}
	return out.Result.Value
}

// waitPage waits, inside the page, until the JavaScript condition cond
// holds; it fails the test after deadline.
func (b *browser) waitPage(t *testing.T, cond string) {
	t.Helper()
	b.eval(t, fmt.Sprintf(`new Promise((resolve, reject) => {
		const until = Date.now() + %d;
		(function check() {
			let ok = false;
			try { ok = !!(%s); } catch (e) {}
			if (ok) resolve(true);
			else if (Date.now() > until) reject(new Error("timed out: " + %q + "\n" + document.body.innerText));
			else setTimeout(check, 10);
		})();
	})`, deadline.Milliseconds()-500, cond, cond))
}

// TestInspectorInChromium loads the inspector page in headless Chromium:
// a transition made on the source shows as an active state and in the
// timeline, a button of the page mutates the machine, and a screenshot is
// taken. Debian's chromium package is needed (.ci/run installs it); without
// it the test is skipped, except under CI, where it fails.
func TestInspectorInChromium(t *testing.T) {
	bin := chromiumPath()
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium not found: .ci/run installs Debian's chromium package")
		}
		t.Skip("chromium not found (apt-get install chromium, or set ARPC_CHROMIUM)")
	}
	in, hs, src := testInspector(t, false)
	b := startBrowser(t, bin)
	b.open(t, hs.URL+"/")
	b.waitPage(t, `window.arpc.ready`)
	require.Eventually(t, func() bool { return in.subscribers() == 1 }, deadline, 2*time.Millisecond)

	node := func(s string) string {
		return fmt.Sprintf(`document.querySelector('#graph .node[data-state="%s"]')`, s)
	}
	b.waitPage(t, node("Start")+`.classList.contains("active") && `+node("Start")+`.getAttribute("data-tick") === "1"`)
	b.waitPage(t, `!`+node("Busy")+`.classList.contains("active")`)
	// the server's counters are shown
	b.waitPage(t, `!document.getElementById("stats-card").classList.contains("hidden") && document.getElementById("stats").textContent.includes("executed")`)
	// relations are drawn as labelled edges
	b.waitPage(t, `[...document.querySelectorAll("#graph .edge title")].some(e => e.textContent === "Start add Ready")`)

	// a mutation made on the source reaches the page
	require.Equal(t, am.Executed, src.Add1("Busy", nil))
	b.waitPage(t, node("Busy")+`.classList.contains("active") && `+node("Busy")+`.getAttribute("data-tick") === "1"`)
	b.waitPage(t, `[...document.querySelectorAll("#timeline li")].some(li => li.textContent.includes("+Busy"))`)

	// the page's add button mutates the machine
	b.eval(t, `document.querySelector('#states tr[data-state="Idle"] button').click()`)
	require.Eventually(t, func() bool { return src.Is1("Idle") }, deadline, 2*time.Millisecond)
	b.waitPage(t, node("Idle")+`.classList.contains("active") && !`+node("Busy")+`.classList.contains("active")`)
	b.waitPage(t, `[...document.querySelectorAll("#timeline li")].some(li => li.textContent.includes("+Idle-Busy"))`)

	// the counters as they are now, with the button's mutation
	b.eval(t, `pollStats()`)
	b.waitPage(t, `document.getElementById("stats").textContent.includes("1 executed")`)

	res, err := b.call(b.session, "Page.captureScreenshot", map[string]any{"format": "png"})
	require.NoError(t, err)
	var shot struct{ Data string }
	require.NoError(t, json.Unmarshal(res, &shot))
	img, err := base64.StdEncoding.DecodeString(shot.Data)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "inspector.png")
	require.NoError(t, os.WriteFile(path, img, 0o644))
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Greater(t, st.Size(), int64(10_000), "a screenshot of the page, not a blank image")
	cfg, err := png.DecodeConfig(bytes.NewReader(img))
	require.NoError(t, err)
	require.Greater(t, cfg.Width, 600)
	require.Greater(t, cfg.Height, 400)
	t.Logf("screenshot: %s (%d bytes, %dx%d)", path, st.Size(), cfg.Width, cfg.Height)
	if *screenshotOut != "" {
		require.NoError(t, os.WriteFile(*screenshotOut, img, 0o644))
	}
}
