// Package remote talks the OCI distribution / Docker registry v2 protocol
// to the endpoints of one repository, mirrors first: manifest resolution,
// token and basic auth, and resumable, verified blob downloads. It speaks
// plain net/http because a pull must control what generic clients hide: the
// endpoint order and fallthrough, per-endpoint TLS and headers, the ?ns=
// parameter for mirrors, override_path, and Range resumption.
package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cri-rt/cri-rt/pkg/registry/hosts"
)

// Media types of manifests cri-rt accepts, plus schema1 so that it can be
// recognised and refused with a clear message.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerSchema1      = "application/vnd.docker.distribution.manifest.v1+json"
	MediaTypeDockerSchema1JWS   = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

var manifestAccept = strings.Join([]string{
	ocispec.MediaTypeImageIndex, ocispec.MediaTypeImageManifest,
	MediaTypeDockerManifestList, MediaTypeDockerManifest,
	MediaTypeDockerSchema1JWS, MediaTypeDockerSchema1,
}, ", ")

// maxManifestSize bounds what is read of a manifest; real ones are a few KiB.
const maxManifestSize = 4 << 20

// Repository is one repository (e.g. "library/busybox" on "docker.io") and
// the endpoints to fetch it from, in order. It is used for one pull and then
// closed; it is safe for concurrent use by that pull's goroutines.
type Repository struct {
	// Host is the registry host of the image reference ("docker.io").
	Host string
	// Name is the repository path ("library/busybox").
	Name string
	// Endpoints in the order to try; see hosts.Resolver.
	Endpoints []hosts.Endpoint
	// Credentials returns the credentials for an endpoint (nil for none).
	Credentials func(hosts.Endpoint) *Credentials
	// Progress, when set, is called with every chunk of bytes received.
	Progress func(n int)

	mu      sync.Mutex
	clients map[string]*http.Client
	auth    map[string]*authState
}

// HTTPError is a registry's answer that is not a success.
type HTTPError struct {
	URL    string
	Status int
	Body   string
}

func (e *HTTPError) Error() string {
	if e.Body != "" {
		return fmt.Sprintf("%s: %d %s: %s", e.URL, e.Status, http.StatusText(e.Status), e.Body)
	}
	return fmt.Sprintf("%s: %d %s", e.URL, e.Status, http.StatusText(e.Status))
}

// Unwrap classifies the status as an errdefs sentinel.
func (e *HTTPError) Unwrap() error {
	switch e.Status {
	case http.StatusNotFound:
		return errdefs.ErrNotFound
	case http.StatusUnauthorized:
		return errdefs.ErrUnauthenticated
	case http.StatusForbidden:
		return errdefs.ErrPermissionDenied
	case http.StatusTooManyRequests:
		return errdefs.ErrResourceExhausted
	}
	if e.Status >= 500 {
		return errdefs.ErrUnavailable
	}
	return errdefs.ErrUnknown
}

func (r *Repository) key(ep hosts.Endpoint) string { return ep.URL.String() + "|" + ep.Source }

// client returns the HTTP client for an endpoint, built once per pull so
// that its connections are reused across that pull's requests.
func (r *Repository) client(ep hosts.Endpoint) *http.Client {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.clients == nil {
		r.clients = map[string]*http.Client{}
	}
	k := r.key(ep)
	if c, ok := r.clients[k]; ok {
		return c
	}
	dialTimeout := ep.DialTimeout
	if dialTimeout == 0 {
		dialTimeout = 30 * time.Second
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       ep.TLS,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       30 * time.Second,
		ForceAttemptHTTP2:     true,
		// Layers are already compressed; asking for gzip would only cost CPU.
		DisableCompression: true,
	}
	c := &http.Client{Transport: tr}
	r.clients[k] = c
	return c
}

// Close releases the pull's idle connections.
func (r *Repository) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.clients {
		c.CloseIdleConnections()
	}
}

func (r *Repository) creds(ep hosts.Endpoint) *Credentials {
	if r.Credentials == nil {
		return nil
	}
	return r.Credentials(ep)
}

func (r *Repository) authFor(ep hosts.Endpoint) *authState {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.auth == nil {
		r.auth = map[string]*authState{}
	}
	k := r.key(ep)
	a, ok := r.auth[k]
	if !ok {
		a = &authState{}
		r.auth[k] = a
	}
	return a
}

// endpointURL is the URL of path (e.g. "/manifests/latest") of this
// repository on ep, with ?ns= for mirrors.
func (r *Repository) endpointURL(ep hosts.Endpoint, path string) string {
	u := *ep.URL
	u.Path = strings.TrimSuffix(u.Path, "/") + "/" + r.Name + path
	u.RawPath = ""
	if ep.Namespace != "" {
		q := u.Query()
		q.Set("ns", ep.Namespace)
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// do sends one request to ep, answering an auth challenge once.
func (r *Repository) do(ctx context.Context, ep hosts.Endpoint, method, path string, hdr http.Header) (*http.Response, error) {
	hc := r.client(ep)
	creds := r.creds(ep)
	state := r.authFor(ep)
	target := r.endpointURL(ep, path)
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, target, nil)
		if err != nil {
			return nil, err
		}
		for k, vs := range ep.Header {
			req.Header[k] = append([]string(nil), vs...)
		}
		for k, vs := range hdr {
			req.Header[k] = vs
		}
		req.Header.Set("User-Agent", "cri-rt")
		r.mu.Lock()
		authz := state.header(creds)
		r.mu.Unlock()
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusUnauthorized || attempt > 0 {
			return resp, nil
		}
		// 401: learn what the endpoint wants, then retry once.
		chs := parseChallenges(resp.Header)
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if err := r.answerChallenge(ctx, hc, state, chs, creds); err != nil {
			return nil, fmt.Errorf("%s: %w", target, err)
		}
		if state.header(creds) == "" {
			return nil, &HTTPError{URL: target, Status: http.StatusUnauthorized, Body: snippet(body) + " (no credentials configured for this host)"}
		}
	}
}

func (r *Repository) answerChallenge(ctx context.Context, hc *http.Client, state *authState, chs []challenge, creds *Credentials) error {
	for _, c := range chs {
		switch c.scheme {
		case "bearer":
			tok, exp, err := fetchToken(ctx, hc, c, "repository:"+r.Name+":pull", creds)
			if err != nil {
				return err
			}
			r.mu.Lock()
			state.scheme, state.token, state.expires = "bearer", tok, exp
			r.mu.Unlock()
			return nil
		case "basic":
			r.mu.Lock()
			state.scheme = "basic"
			r.mu.Unlock()
			return nil
		}
	}
	return fmt.Errorf("registry requires an unsupported authentication scheme: %w", errdefs.ErrUnauthenticated)
}

func checkResponse(resp *http.Response, want ...int) error {
	for _, w := range want {
		if resp.StatusCode == w {
			return nil
		}
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	return &HTTPError{URL: resp.Request.URL.Redacted(), Status: resp.StatusCode, Body: snippet(body)}
}

// endpointErrors collects why each endpoint failed, so the final error
// tells the operator the whole story.
type endpointErrors []error

func (e endpointErrors) err(what string) error {
	if len(e) == 0 {
		return fmt.Errorf("%s: no endpoint available: %w", what, errdefs.ErrNotFound)
	}
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	// Classify by the last endpoint (the upstream), which is authoritative.
	return &pullError{msg: what + ": " + strings.Join(msgs, "; "), cause: e[len(e)-1]}
}

type pullError struct {
	msg   string
	cause error
}

func (e *pullError) Error() string { return e.msg }
func (e *pullError) Unwrap() error { return e.cause }

// fallThrough reports whether a failure at one endpoint should move on to
// the next: anything but the caller giving up.
func fallThrough(ctx context.Context, err error) bool {
	return ctx.Err() == nil && !errors.Is(err, context.Canceled)
}

// Resolve fetches the manifest (or index) that ref names: a tag or a
// digest. Tags are only resolved on endpoints with the resolve capability;
// by digest any endpoint that can pull will do, and the content is verified.
func (r *Repository) Resolve(ctx context.Context, ref string) (ocispec.Descriptor, []byte, error) {
	var want digest.Digest
	capability := hosts.Resolve
	if d, err := digest.Parse(ref); err == nil {
		want, capability = d, hosts.Pull
	}
	var errs endpointErrors
	for _, ep := range hosts.Filter(r.Endpoints, capability) {
		desc, body, err := r.fetchManifest(ctx, ep, ref, want)
		if err == nil {
			return desc, body, nil
		}
		errs = append(errs, err)
		if !fallThrough(ctx, err) {
			break
		}
	}
	return ocispec.Descriptor{}, nil, errs.err("resolving " + r.Host + "/" + r.Name + refSep(ref) + ref)
}

func refSep(ref string) string {
	if strings.Contains(ref, ":") {
		return "@"
	}
	return ":"
}

// FetchManifest fetches a manifest by digest (a platform manifest of an index).
func (r *Repository) FetchManifest(ctx context.Context, d digest.Digest) (ocispec.Descriptor, []byte, error) {
	return r.Resolve(ctx, d.String())
}

func (r *Repository) fetchManifest(ctx context.Context, ep hosts.Endpoint, ref string, want digest.Digest) (ocispec.Descriptor, []byte, error) {
	resp, err := r.do(ctx, ep, http.MethodGet, "/manifests/"+ref, http.Header{"Accept": {manifestAccept}})
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	if err := checkResponse(resp, http.StatusOK); err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestSize+1))
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("%s: reading manifest: %w", ep.URL.Host, err)
	}
	if len(body) > maxManifestSize {
		return ocispec.Descriptor{}, nil, fmt.Errorf("%s: manifest larger than %d bytes", ep.URL.Host, maxManifestSize)
	}
	if r.Progress != nil {
		r.Progress(len(body))
	}
	got := digest.FromBytes(body)
	if want != "" {
		if want.Algorithm() != digest.SHA256 {
			got = want.Algorithm().FromBytes(body)
		}
		if got != want {
			return ocispec.Descriptor{}, nil, fmt.Errorf("%s: manifest digest %s does not match the requested %s: %w", ep.URL.Host, got, want, errdefs.ErrDataLoss)
		}
	}
	mt := detectManifestType(resp.Header.Get("Content-Type"), body)
	return ocispec.Descriptor{MediaType: mt, Digest: got, Size: int64(len(body))}, body, nil
}

// detectManifestType trusts the body's mediaType field over the header,
// which some registries and proxies get wrong.
func detectManifestType(header string, body []byte) string {
	var probe struct {
		SchemaVersion int             `json:"schemaVersion"`
		MediaType     string          `json:"mediaType"`
		Manifests     json.RawMessage `json:"manifests"`
		Layers        json.RawMessage `json:"layers"`
		FSLayers      json.RawMessage `json:"fsLayers"`
	}
	if err := json.Unmarshal(body, &probe); err == nil {
		switch {
		case probe.MediaType != "":
			return probe.MediaType
		case probe.SchemaVersion == 1 || probe.FSLayers != nil:
			return MediaTypeDockerSchema1
		case probe.Manifests != nil:
			return ocispec.MediaTypeImageIndex
		case probe.Layers != nil:
			return ocispec.MediaTypeImageManifest
		}
	}
	mt, _, _ := strings.Cut(header, ";")
	return strings.TrimSpace(mt)
}

// OpenBlob streams the blob d of the given size (-1 if unknown). The reader
// resumes with a Range request when a connection breaks, moves on to the
// next endpoint when one cannot serve it, and fails at the end instead of
// returning io.EOF if the bytes do not match d: a consumer that reads to EOF
// has verified the content.
func (r *Repository) OpenBlob(ctx context.Context, d digest.Digest, size int64) (io.ReadCloser, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("blob digest %q: %w", d, errdefs.ErrInvalidArgument)
	}
	br := &blobReader{ctx: ctx, repo: r, dgst: d, size: size, verifier: d.Algorithm().Digester(), eps: hosts.Filter(r.Endpoints, hosts.Pull)}
	if err := br.open(); err != nil {
		return nil, err
	}
	return br, nil
}
