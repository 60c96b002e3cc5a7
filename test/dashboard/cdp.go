// Package dashboard drives a real headless Chromium over the Chrome
// DevTools Protocol, to test the admin dashboard as a browser runs it. It
// holds a minimal CDP client (Launch, NewPage, Eval, WaitTrue, Screenshot),
// also meant for end-to-end tests that go through the real binary, and test
// helpers around it (StartBrowser, OpenPage, SaveScreenshot).
package dashboard

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/websocket"
)

// FindChromium returns the browser to run: $RULEBOOK_CHROMIUM, else the
// first of chromium, chromium-browser, google-chrome on PATH.
func FindChromium() (string, error) {
	if p := os.Getenv("RULEBOOK_CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no chromium on PATH (Debian package chromium; test/setup.sh installs it)")
}

// Browser is a running headless Chromium.
type Browser struct {
	cmd    *exec.Cmd
	port   int
	stderr *lockedBuffer
	exited chan struct{}
	once   sync.Once
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() < 1<<20 {
		l.b.Write(p)
	}
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Launch starts Chromium headless with its DevTools endpoint on a free
// loopback port, its profile in userDataDir, and name resolution limited to
// loopback (the browser reaches nothing else), and waits until the endpoint
// answers or ctx ends.
func Launch(ctx context.Context, chromium, userDataDir string) (*Browser, error) {
	args := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--disable-default-apps", "--no-first-run", "--no-default-browser-check",
		"--password-store=basic", "--mute-audio", "--hide-scrollbars",
		"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
		"--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
		"--remote-allow-origins=http://127.0.0.1",
		"--user-data-dir=" + userDataDir,
		"--window-size=1400,1000",
		"about:blank",
	}
	cmd := exec.Command(chromium, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	b := &Browser{cmd: cmd, stderr: &lockedBuffer{}, exited: make(chan struct{})}
	cmd.Stdout = b.stderr
	cmd.Stderr = b.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", chromium, err)
	}
	go func() {
		_ = cmd.Wait()
		close(b.exited)
	}()
	portFile := filepath.Join(userDataDir, "DevToolsActivePort")
	for {
		if data, err := os.ReadFile(portFile); err == nil {
			line, _, _ := strings.Cut(string(data), "\n")
			if p, err := strconv.Atoi(strings.TrimSpace(line)); err == nil && p > 0 {
				b.port = p
				break
			}
		}
		select {
		case <-b.exited:
			return nil, fmt.Errorf("chromium exited before its DevTools endpoint opened: %s", b.Log())
		case <-ctx.Done():
			b.Close()
			return nil, fmt.Errorf("chromium DevTools endpoint: %w; output: %s", ctx.Err(), b.Log())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return b, nil
}

// Log returns what the browser printed (the beginning of it).
func (b *Browser) Log() string { return b.stderr.String() }

// Close ends the browser and every process it started, and waits for it.
func (b *Browser) Close() {
	b.once.Do(func() {
		// The browser is its own process group leader (Setpgid), so this
		// reaches its renderer and utility processes and nothing else.
		_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-b.exited:
		case <-time.After(10 * time.Second):
		}
	})
}

// target is one entry of the DevTools /json endpoints.
type target struct {
	ID                   string `json:"id"`
	Type                 string `json:"type"`
	URL                  string `json:"url"`
	WebSocketDebuggerURL string `json:"webSocketDebuggerUrl"`
}

// NewPage opens a new tab on url and connects to it.
func (b *Browser) NewPage(ctx context.Context, url string) (*Page, error) {
	endpoint := fmt.Sprintf("http://127.0.0.1:%d/json/new?%s", b.port, url)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, endpoint, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("devtools new target: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("devtools new target: %s: %s", resp.Status, body)
	}
	var tg target
	if err := json.Unmarshal(body, &tg); err != nil || tg.WebSocketDebuggerURL == "" {
		return nil, fmt.Errorf("devtools new target: unexpected answer %s (%v)", body, err)
	}
	conn, err := Dial(ctx, tg.WebSocketDebuggerURL)
	if err != nil {
		return nil, err
	}
	return &Page{Conn: conn}, nil
}

// Conn is a DevTools Protocol connection to one target.
type Conn struct {
	ws     *websocket.Conn
	wmu    sync.Mutex
	nextID atomic.Int64

	mu      sync.Mutex
	pending map[int64]chan message
	onEvent func(method string, params json.RawMessage)
	err     error
	done    chan struct{}
}

type message struct {
	ID     int64           `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Data    string `json:"data,omitempty"`
	} `json:"error,omitempty"`
}

// Dial connects to a DevTools WebSocket URL.
func Dial(ctx context.Context, wsURL string) (*Conn, error) {
	cfg, err := websocket.NewConfig(wsURL, "http://127.0.0.1")
	if err != nil {
		return nil, err
	}
	ws, err := cfg.DialContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("devtools websocket %s: %w", wsURL, err)
	}
	ws.MaxPayloadBytes = 64 << 20
	c := &Conn{ws: ws, pending: map[int64]chan message{}, done: make(chan struct{})}
	go c.readLoop()
	return c, nil
}

// OnEvent sets the function that receives protocol events (called from the
// reading goroutine; it must not call Call).
func (c *Conn) OnEvent(f func(method string, params json.RawMessage)) {
	c.mu.Lock()
	c.onEvent = f
	c.mu.Unlock()
}

func (c *Conn) readLoop() {
	defer close(c.done)
	for {
		var raw []byte
		if err := websocket.Message.Receive(c.ws, &raw); err != nil {
			c.mu.Lock()
			c.err = fmt.Errorf("devtools connection: %w", err)
			for id, ch := range c.pending {
				close(ch)
				delete(c.pending, id)
			}
			c.mu.Unlock()
			return
		}
		var m message
		if err := json.Unmarshal(raw, &m); err != nil {
			continue
		}
		c.mu.Lock()
		if m.ID != 0 {
			if ch := c.pending[m.ID]; ch != nil {
				delete(c.pending, m.ID)
				ch <- m
			}
		} else if c.onEvent != nil && m.Method != "" {
			c.onEvent(m.Method, m.Params)
		}
		c.mu.Unlock()
	}
}

// Call sends one command and decodes its result into result (when not
// nil).
func (c *Conn) Call(ctx context.Context, method string, params any, result any) error {
	id := c.nextID.Add(1)
	ch := make(chan message, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return c.err
	}
	c.pending[id] = ch
	c.mu.Unlock()
	if params == nil {
		params = struct{}{}
	}
	req, err := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	if err != nil {
		return err
	}
	c.wmu.Lock()
	err = websocket.Message.Send(c.ws, string(req))
	c.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			c.mu.Lock()
			defer c.mu.Unlock()
			return fmt.Errorf("%s: %w", method, c.err)
		}
		if m.Error != nil {
			return fmt.Errorf("%s: %s (%d) %s", method, m.Error.Message, m.Error.Code, m.Error.Data)
		}
		if result != nil {
			return json.Unmarshal(m.Result, result)
		}
		return nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// Close closes the connection.
func (c *Conn) Close() error {
	err := c.ws.Close()
	<-c.done
	return err
}

// Page is a connection to one browser tab.
type Page struct {
	*Conn
}

// Navigate loads url and waits for the navigation to commit.
func (p *Page) Navigate(ctx context.Context, url string) error {
	var res struct {
		ErrorText string `json:"errorText"`
	}
	if err := p.Call(ctx, "Page.navigate", map[string]any{"url": url}, &res); err != nil {
		return err
	}
	if res.ErrorText != "" {
		return fmt.Errorf("navigate to %s: %s", url, res.ErrorText)
	}
	return nil
}

// Eval evaluates a JavaScript expression in the page (awaiting a promise)
// and decodes its value into out (when not nil).
func (p *Page) Eval(ctx context.Context, expr string, out any) error {
	var res struct {
		Result struct {
			Type  string          `json:"type"`
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	err := p.Call(ctx, "Runtime.evaluate", map[string]any{
		"expression": expr, "returnByValue": true, "awaitPromise": true,
	}, &res)
	if err != nil {
		return err
	}
	if d := res.ExceptionDetails; d != nil {
		return fmt.Errorf("evaluate %q: %s %s", expr, d.Text, d.Exception.Description)
	}
	if out != nil && len(res.Result.Value) > 0 {
		return json.Unmarshal(res.Result.Value, out)
	}
	return nil
}

// WaitTrue evaluates expr until it yields true or ctx ends. describe, when
// not empty, is an expression whose value the error reports (what the page
// showed instead).
func (p *Page) WaitTrue(ctx context.Context, expr, describe string) error {
	var lastErr error
	for {
		var ok bool
		lastErr = p.Eval(ctx, "Boolean("+expr+")", &ok)
		if lastErr == nil && ok {
			return nil
		}
		select {
		case <-ctx.Done():
			state := ""
			if describe != "" {
				var v any
				cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if err := p.Eval(cctx, describe, &v); err == nil {
					b, _ := json.Marshal(v)
					state = string(b)
				}
				cancel()
			}
			return fmt.Errorf("waiting for %s: %w (last error: %v) page: %s", expr, ctx.Err(), lastErr, state)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Screenshot captures the page as PNG.
func (p *Page) Screenshot(ctx context.Context) ([]byte, error) {
	var res struct {
		Data string `json:"data"`
	}
	if err := p.Call(ctx, "Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true}, &res); err != nil {
		return nil, err
	}
	return base64.StdEncoding.DecodeString(res.Data)
}
