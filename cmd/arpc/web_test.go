package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
)

// testInspector serves the inspector of a fresh test machine with httptest;
// everything stops at cleanup.
func testInspector(t *testing.T, readOnly bool) (*inspector, *httptest.Server, *am.Machine) {
	t.Helper()
	srv, src, _ := testServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	c, err := rpc.DialAny(ctx, srv.Addr)
	require.NoError(t, err)
	in := newInspector(c, srv.Addr, readOnly)
	rctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = in.run(rctx)
	}()
	hs := httptest.NewServer(in)
	t.Cleanup(func() {
		stop()
		hs.Close()
		<-done
		_ = c.Close()
	})
	return in, hs, src
}

// sse reads server-sent events.
type sse struct {
	r *bufio.Reader
}

// next returns the next event's name and data.
func (s *sse) next(t *testing.T) (string, string) {
	t.Helper()
	var name, data string
	for {
		line, err := s.r.ReadString('\n')
		require.NoError(t, err)
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" && name != "":
			return name, data
		case strings.HasPrefix(line, "event: "):
			name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			data = line[len("data: "):]
		}
	}
}

func postMutate(t *testing.T, hs *httptest.Server, body string, hdr map[string]string) (int, map[string]string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, hs.URL+"/api/mutate", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", hs.URL)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := hs.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]string
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

func TestWebPage(t *testing.T) {
	_, hs, _ := testInspector(t, false)
	resp, err := hs.Client().Get(hs.URL + "/")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	page := string(body)
	require.Contains(t, page, `<svg id="graph"`)
	require.Contains(t, page, `new EventSource("/api/events")`)
	// everything is in the page: no external script, style or font
	require.NotContains(t, page, "<script src")
	require.NotContains(t, page, "<link")
	require.NotContains(t, page, "https://")

	resp, err = hs.Client().Get(hs.URL + "/api/machine")
	require.NoError(t, err)
	var v pageView
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
	resp.Body.Close()
	require.Equal(t, "desk", v.ID)
	require.Equal(t, []string{"Start", "Ready"}, v.Active)
	require.True(t, v.Connected)
	require.False(t, v.ReadOnly)
	require.Equal(t, []string{"Ready"}, v.States[0].Add)

	resp, err = hs.Client().Get(hs.URL + "/api/stats")
	require.NoError(t, err)
	var st map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	// the inspector's own session (its Describe connection may not be
	// closed on the server's side yet)
	require.Equal(t, float64(1), st["sessions"])
	require.GreaterOrEqual(t, st["conns"], float64(1))

	resp, err = hs.Client().Get(hs.URL + "/nope")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}

// TestWebEvents: the stream starts with the machine and delivers a
// transition made on the source.
func TestWebEvents(t *testing.T) {
	in, hs, src := testInspector(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, hs.URL+"/api/events", nil)
	require.NoError(t, err)
	resp, err := hs.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	ev := &sse{r: bufio.NewReader(resp.Body)}

	name, data := ev.next(t)
	require.Equal(t, "machine", name)
	var v pageView
	require.NoError(t, json.Unmarshal([]byte(data), &v))
	require.Equal(t, []string{"Start", "Ready"}, v.Active)
	require.Equal(t, 1, in.subscribers())

	require.Equal(t, am.Executed, src.Add1("Busy", nil))
	name, data = ev.next(t)
	require.Equal(t, "change", name)
	var ch change
	require.NoError(t, json.Unmarshal([]byte(data), &ch))
	require.Equal(t, []string{"Busy"}, ch.Entered)
	require.Equal(t, map[string]uint64{"Busy": 1}, ch.Ticks)
	require.Equal(t, []string{"Start", "Ready", "Busy"}, ch.Active)

	// a page that connects later gets the change in its backlog
	req2, err := http.NewRequestWithContext(ctx, http.MethodGet, hs.URL+"/api/events", nil)
	require.NoError(t, err)
	resp2, err := hs.Client().Do(req2)
	require.NoError(t, err)
	defer resp2.Body.Close()
	ev2 := &sse{r: bufio.NewReader(resp2.Body)}
	name, _ = ev2.next(t)
	require.Equal(t, "machine", name)
	name, data = ev2.next(t)
	require.Equal(t, "backlog", name)
	require.Contains(t, data, `"entered":["Busy"]`)
}

// TestWebMutate: the page's add and remove buttons, and what they refuse.
func TestWebMutate(t *testing.T) {
	_, hs, src := testInspector(t, false)

	code, out := postMutate(t, hs, `{"op":"add","states":["Busy"]}`, nil)
	require.Equal(t, http.StatusOK, code, out)
	require.Equal(t, "executed", out["result"])
	require.True(t, src.Is1("Busy"))

	code, out = postMutate(t, hs, `{"op":"remove","states":["Busy"]}`, nil)
	require.Equal(t, http.StatusOK, code, out)
	require.False(t, src.Is1("Busy"))

	code, out = postMutate(t, hs, `{"op":"add","states":["Vetoed"]}`, nil)
	require.Equal(t, http.StatusOK, code, out)
	require.Equal(t, "canceled", out["result"])

	code, _ = postMutate(t, hs, `{"op":"add","states":["Nope"]}`, nil)
	require.Equal(t, http.StatusBadRequest, code)
	code, _ = postMutate(t, hs, `{"op":"toggle","states":["Busy"]}`, nil)
	require.Equal(t, http.StatusBadRequest, code)
	code, _ = postMutate(t, hs, `not json`, nil)
	require.Equal(t, http.StatusBadRequest, code)

	// another site can't make the browser mutate the machine
	for _, hdr := range []map[string]string{
		{"Origin": "http://evil.example"},
		{"Content-Type": "text/plain"},
		{"Sec-Fetch-Site": "cross-site"},
	} {
		code, _ = postMutate(t, hs, `{"op":"add","states":["Busy"]}`, hdr)
		require.Equal(t, http.StatusForbidden, code, hdr)
	}
	require.False(t, src.Is1("Busy"))

	// nor reach it through a name that resolves here (DNS rebinding)
	req, err := http.NewRequest(http.MethodGet, hs.URL+"/api/machine", nil)
	require.NoError(t, err)
	req.Host = "evil.example"
	resp, err := hs.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMisdirectedRequest, resp.StatusCode)
}

func TestWebReadOnly(t *testing.T) {
	_, hs, src := testInspector(t, true)
	code, _ := postMutate(t, hs, `{"op":"add","states":["Busy"]}`, nil)
	require.Equal(t, http.StatusForbidden, code)
	require.False(t, src.Is1("Busy"))
	resp, err := hs.Client().Get(hs.URL + "/api/machine")
	require.NoError(t, err)
	var v pageView
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
	resp.Body.Close()
	require.True(t, v.ReadOnly)
}

// TestWebCommand runs "arpc web" itself: it prints the page's address,
// serves it, and stops cleanly on Ctrl-C.
func TestWebCommand(t *testing.T) {
	srv, _, _ := testServer(t)
	w := start("web", srv.Addr, "--json", "--listen", "127.0.0.1:0")
	w.waitOutput(t, "\n")
	var out struct{ URL, Machine string }
	require.NoError(t, json.Unmarshal([]byte(w.out.String()), &out), w.out.String())
	require.Equal(t, "desk", out.Machine)
	resp, err := http.Get(out.URL)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// an open event stream does not hold the stop up
	resp, err = http.Get(out.URL + "api/events")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, exitOK, w.interrupt(t), w.errb.String())
}
