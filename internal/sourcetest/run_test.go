package sourcetest

import (
	"net/http"
	"testing"
)

// A waiter on the zero Counter is woken by Add and then sees the new count.
func TestCounter(t *testing.T) {
	var c Counter
	n, changed := c.Get()
	if n != 0 {
		t.Fatalf("zero counter at %d", n)
	}
	woken := make(chan int)
	go func() {
		<-changed
		n, _ := c.Get()
		woken <- n
	}()
	c.Add(3)
	if n := <-woken; n != 3 {
		t.Fatalf("woken at %d, want 3", n)
	}
}

// Serve's stop drops the server and a new Serve on the same address brings
// it back.
func TestServeRestart(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	addr, stop := Serve(t, h, "127.0.0.1:0", nil)
	get := func() error {
		resp, err := http.Get("http://" + addr)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusTeapot {
				t.Fatalf("status %d", resp.StatusCode)
			}
		}
		return err
	}
	if err := get(); err != nil {
		t.Fatal(err)
	}
	stop()
	http.DefaultClient.CloseIdleConnections()
	if err := get(); err == nil {
		t.Fatal("served after stop")
	}
	Serve(t, h, addr, nil)
	if err := get(); err != nil {
		t.Fatalf("after a restart: %v", err)
	}
}
