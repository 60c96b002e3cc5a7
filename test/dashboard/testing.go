package dashboard

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// StartBrowser launches headless Chromium for a test and closes it when the
// test ends. Without a browser the test is skipped, or fails under CI=true.
func StartBrowser(t testing.TB) *Browser {
	t.Helper()
	path, err := FindChromium()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and %v", err)
		}
		t.Skipf("skipping the browser test: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := Launch(ctx, path, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// SaveScreenshot captures the page as PNG into the test's temporary
// directory and, when RULEBOOK_SCREENSHOT_DIR is set, there too; it returns
// the paths written.
func SaveScreenshot(t testing.TB, ctx context.Context, p *Page, name string) []string {
	t.Helper()
	png, err := p.Screenshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Fatalf("screenshot is not a PNG (%d bytes)", len(png))
	}
	dirs := []string{t.TempDir()}
	if d := os.Getenv("RULEBOOK_SCREENSHOT_DIR"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	var paths []string
	for _, d := range dirs {
		path := filepath.Join(d, name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s (%d bytes)", path, len(png))
		paths = append(paths, path)
	}
	return paths
}

// OpenPage opens url in a new tab of b and, when the test ends, fails it
// for every uncaught page exception or console error it saw.
func OpenPage(t testing.TB, ctx context.Context, b *Browser, url string) *Page {
	t.Helper()
	p, err := b.NewPage(ctx, "about:blank")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	var mu sync.Mutex
	var problems []string
	p.OnEvent(func(method string, params json.RawMessage) {
		switch method {
		case "Runtime.exceptionThrown":
			mu.Lock()
			problems = append(problems, "exception: "+string(params))
			mu.Unlock()
		case "Runtime.consoleAPICalled":
			var c struct {
				Type string `json:"type"`
			}
			if json.Unmarshal(params, &c) == nil && (c.Type == "error" || c.Type == "assert") {
				mu.Lock()
				problems = append(problems, "console: "+string(params))
				mu.Unlock()
			}
		}
	})
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range problems {
			t.Errorf("page %s", p)
		}
	})
	for _, m := range []string{"Page.enable", "Runtime.enable"} {
		if err := p.Call(ctx, m, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Navigate(ctx, url); err != nil {
		t.Fatal(err)
	}
	return p
}
