// Command bare is the baseline of bench/ingest.sh: a plain net/http server
// that reads each request body and answers 200 with a small JSON body, with
// no parsing, no journal and no rules. It shows what the machine and the
// load generator can do, so the webhook source's figures can be read as a
// ratio.
//
//	go run ./bench/bare -addr 127.0.0.1:18080
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/rulebook-dev/rulebook/bench/internal/benchhttp"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18080", "listen address")
	flag.Parse()
	err := benchhttp.Serve(*addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, benchhttp.MaxBody)); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		benchhttp.Accepted(w)
	}))
	if err != nil {
		fmt.Fprintln(os.Stderr, "bare:", err)
		os.Exit(1)
	}
}
