// Command forkhook is the stand-in for adnanh/webhook in bench/actions.sh
// when that module cannot be fetched: a bare net/http handler that, like
// adnanh/webhook's default hook (no command output in the response),
// answers 200 and runs the command in the background, one process per
// request, with no record of it. It is the fork-per-request reference
// without durability; Rulebook's ratio to it is the cost of durability
// and of the engine.
package main

import (
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"os/exec"
	"strconv"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen `address`")
	prog := flag.String("prog", "", "`path` of the program to run per request")
	out := flag.String("out", "", "`file` the program appends to")
	flag.Parse()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			N int64 `json:"n"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		go func() {
			if err := exec.Command(*prog, *out, strconv.FormatInt(body.N, 10)).Run(); err != nil {
				log.Printf("forkhook: %v", err)
			}
		}()
	})
	log.Fatal(http.ListenAndServe(*addr, nil))
}
