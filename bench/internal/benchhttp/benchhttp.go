// Package benchhttp is what the plain HTTP targets of bench/ingest.sh
// (bare, floor) share: the bound on a request body, the answer, and
// serving until SIGINT or SIGTERM.
package benchhttp

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// MaxBody is the most a target reads of a request body.
const MaxBody = 4 << 20

// ReadBody reads the whole request body, at most MaxBody bytes; on error
// it has answered 400.
func ReadBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return nil, false
	}
	return body, true
}

// Accepted answers 200 with the small JSON body every target sends.
func Accepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"status":"accepted"}`+"\n")
}

// Serve serves h on addr until SIGINT or SIGTERM, then shuts down within
// 5 s.
func Serve(addr string, h http.Handler) error {
	srv := &http.Server{Addr: addr, ReadHeaderTimeout: 10 * time.Second, Handler: h}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
