package hosts

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

// fileCache keeps what was parsed from files until one of them changes
// (size or modification time), so lookups on every pull cost stat calls,
// not reads and PEM/TOML parsing, while edits are picked up without a
// restart.
type fileCache struct {
	mu sync.Mutex
	m  map[string]cacheEntry
}

type cacheEntry struct {
	stamp string
	val   any
	err   error
}

// get returns parse(contents of paths), cached under kind and paths. A file
// that cannot be stat'ed or read is an error and is not cached, so it is
// retried on the next call.
func (c *fileCache) get(kind string, paths []string, parse func(data [][]byte) (any, error)) (any, error) {
	var stamp strings.Builder
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		stamp.WriteString(strconv.FormatInt(fi.ModTime().UnixNano(), 10) + "/" + strconv.FormatInt(fi.Size(), 10) + ";")
	}
	key := kind + "\x00" + strings.Join(paths, "\x00")
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if ok && e.stamp == stamp.String() {
		return e.val, e.err
	}
	data := make([][]byte, len(paths))
	for i, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		data[i] = b
	}
	// Parsing outside the lock: two racing lookups may both parse, which
	// is harmless, rather than serialising every pull on file I/O.
	v, err := parse(data)
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[string]cacheEntry)
	}
	c.m[key] = cacheEntry{stamp: stamp.String(), val: v, err: err}
	c.mu.Unlock()
	return v, err
}

// caCerts returns the certificates of a PEM file of CAs.
func (c *fileCache) caCerts(file string) ([]*x509.Certificate, error) {
	v, err := c.get("ca", []string{file}, func(data [][]byte) (any, error) {
		var certs []*x509.Certificate
		rest := data[0]
		for {
			var block *pem.Block
			block, rest = pem.Decode(rest)
			if block == nil {
				break
			}
			if block.Type != "CERTIFICATE" {
				continue
			}
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, err
			}
			certs = append(certs, cert)
		}
		if len(certs) == 0 {
			return nil, fmt.Errorf("no PEM certificate found")
		}
		return certs, nil
	})
	if err != nil {
		return nil, fmt.Errorf("CA file %s: %w", file, err)
	}
	return v.([]*x509.Certificate), nil
}

// keyPair loads a client certificate; an empty key means the key is in the
// certificate file.
func (c *fileCache) keyPair(pair [2]string) (tls.Certificate, error) {
	paths := []string{pair[0]}
	if pair[1] != "" {
		paths = append(paths, pair[1])
	}
	v, err := c.get("client", paths, func(data [][]byte) (any, error) {
		key := data[0]
		if len(data) > 1 {
			key = data[1]
		}
		return tls.X509KeyPair(data[0], key)
	})
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("client certificate %s: %w", strings.Join(paths, " + "), err)
	}
	return v.(tls.Certificate), nil
}

// tlsConfig builds the TLS configuration of an https endpoint. It is best
// effort: each file that cannot be used is reported and left out, and the
// caller decides whether the endpoint survives that.
func (r *Resolver) tlsConfig(s *spec) (*tls.Config, []error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	var errs []error
	if s.skipVerify != nil {
		cfg.InsecureSkipVerify = *s.skipVerify
	}
	if len(s.caFiles) > 0 {
		// Extra CAs add to the system roots rather than replace them: a
		// mirror CA must not break the upstream's public certificate.
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		for _, f := range s.caFiles {
			certs, err := r.files.caCerts(f)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for _, c := range certs {
				pool.AddCert(c)
			}
		}
		cfg.RootCAs = pool
	}
	for _, p := range s.clientPairs {
		cert, err := r.files.keyPair(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cfg.Certificates = append(cfg.Certificates, cert)
	}
	return cfg, errs
}
