package httpcall

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"net/http"
	"os"
)

// maxTLSTransports bounds how many TLS configurations keep a transport, and
// with it a pool of idle connections, at once.
const maxTLSTransports = 16

// tlsTransport is the transport of one TLS configuration.
//
// The fields other than t are guarded by HTTP.mu.
type tlsTransport struct {
	t *http.Transport
	// digest is the SHA-256 of the CA, certificate and key files the
	// transport was built from.
	digest [sha256.Size]byte
	// lastUse orders transports for eviction: the least recently used goes.
	lastUse uint64
	// refs counts the requests in flight on t.
	refs int
	// retired: no longer in the cache (replaced, evicted or the action
	// closed). Its idle connections are closed as soon as refs is 0.
	retired bool
}

// tlsFiles holds the contents of the files a tlsConfig names.
type tlsFiles struct{ ca, cert, key []byte }

func (c tlsConfig) read() (tlsFiles, error) {
	var f tlsFiles
	for _, x := range []struct {
		key, path string
		dst       *[]byte
	}{{"tls.ca", c.ca, &f.ca}, {"tls.cert", c.cert, &f.cert}, {"tls.key", c.key, &f.key}} {
		if x.path == "" {
			continue
		}
		b, err := os.ReadFile(x.path)
		if err != nil {
			return f, fmt.Errorf("%s: %w", x.key, err)
		}
		*x.dst = b
	}
	return f, nil
}

// digest identifies the files' contents; each is length-prefixed so that
// moving bytes from one file to the next changes it.
func (f tlsFiles) digest() [sha256.Size]byte {
	h := sha256.New()
	for _, b := range [][]byte{f.ca, f.cert, f.key} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// build turns the files of c into a TLS client configuration.
func (c tlsConfig) build(f tlsFiles) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.insecure} //nolint:gosec // the operator's explicit choice
	if c.ca != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(f.ca) {
			return nil, fmt.Errorf("tls.ca: %q holds no PEM certificate", c.ca)
		}
		conf.RootCAs = pool
	}
	if c.cert != "" {
		pair, err := tls.X509KeyPair(f.cert, f.key)
		if err != nil {
			return nil, fmt.Errorf("tls.cert/tls.key: %w", err)
		}
		conf.Certificates = []tls.Certificate{pair}
	}
	return conf, nil
}

// acquireTLS returns the transport for c and a release function to call
// once the response body is closed.
//
// Transports are cached by the tls arguments (the paths and
// insecure_skip_verify), so calls with the same arguments share
// connections. Every call reads the files again and compares the digest of
// their contents with the one the cached transport was built from: a
// rotated CA, certificate or key is used by the next call, without a
// restart, however it was written (in place, by rename, with a preserved or
// coarse modification time). The old transport is retired and its
// connections closed once its requests in flight are done. Reading a few
// small, page-cached files costs little next to a request; the TLS
// configuration is parsed only when the contents change. A file caught
// half-written fails the call like any unreadable file, and the next call
// reads it again.
//
// At most maxTLSTransports configurations are cached; adding one more
// retires the least recently used. After Close, each call gets a transport
// of its own that is closed when the call ends.
func (h *HTTP) acquireTLS(c tlsConfig) (*http.Transport, func(), error) {
	files, err := c.read()
	if err != nil {
		return nil, nil, err
	}
	sum := files.digest()

	h.mu.Lock()
	e := h.tlsTransports[c]
	if e != nil && e.digest == sum && !h.closed {
		h.useLocked(e)
		h.mu.Unlock()
		return e.t, func() { h.release(e) }, nil
	}
	h.mu.Unlock()

	// Parse outside the lock: other configurations need not wait.
	conf, err := c.build(files)
	if err != nil {
		return nil, nil, err
	}
	fresh := &tlsTransport{t: newTransport(conf), digest: sum}

	var idle []*http.Transport
	h.mu.Lock()
	switch e = h.tlsTransports[c]; {
	case h.closed:
		fresh.retired = true
		e = fresh
	case e != nil && e.digest == sum:
		// Another call built the same configuration meanwhile; fresh has
		// no connections yet and is dropped.
	default:
		if e != nil {
			idle = h.retireLocked(idle, c, e)
		} else if len(h.tlsTransports) >= h.maxTLS {
			var lruKey tlsConfig
			var lru *tlsTransport
			for k, x := range h.tlsTransports {
				if lru == nil || x.lastUse < lru.lastUse {
					lruKey, lru = k, x
				}
			}
			idle = h.retireLocked(idle, lruKey, lru)
		}
		h.tlsTransports[c] = fresh
		e = fresh
	}
	h.useLocked(e)
	h.mu.Unlock()
	for _, t := range idle {
		t.CloseIdleConnections()
	}
	return e.t, func() { h.release(e) }, nil
}

func (h *HTTP) useLocked(e *tlsTransport) {
	h.uses++
	e.lastUse = h.uses
	e.refs++
}

// retireLocked removes e, cached under c, and appends its transport to idle
// if no request uses it, for the caller to close after unlocking.
func (h *HTTP) retireLocked(idle []*http.Transport, c tlsConfig, e *tlsTransport) []*http.Transport {
	delete(h.tlsTransports, c)
	e.retired = true
	if e.refs == 0 {
		idle = append(idle, e.t)
	}
	return idle
}

func (h *HTTP) release(e *tlsTransport) {
	h.mu.Lock()
	e.refs--
	closeNow := e.retired && e.refs == 0
	h.mu.Unlock()
	if closeNow {
		e.t.CloseIdleConnections()
	}
}
